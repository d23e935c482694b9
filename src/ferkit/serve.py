"""HTTP API and a one-page web game over the torch-free Recognizer (FastAPI; `pip install 'ferkit[serve]'`).

Endpoints (every image is sent as the request body, raw bytes or a multipart form with one file):
- `GET /health`: the model's name, labels and contract; for probes and for clients to learn the labels.
- `POST /predict[?crop=true|false]`: every face's box, eyes, detection score, probabilities and expression.
- `POST /score?target=happy[&session=ID][&t=SECONDS][&reset=true]`: the Best Actor score of one frame. With a
  `session`, frames of one player are tracked by `ferkit.game.ScoreTracker` (time-based smoothing, hold through
  missed detections, the round's best); without one, the frame is scored on itself.
- `GET /`: a web page that plays the game with the browser's camera (or a chosen photo) through `/score`.

Bad input never becomes a 500: a non-image, an empty body, an unknown target get 400 with ferkit's message
naming the problem; a body over `max_bytes` gets 413. This is the runtime layer: no torch.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and `Request` is imported
# inside create_app (fastapi is an optional extra), so they must be evaluated where they are written.

import threading
from collections import OrderedDict
from importlib.resources import files
from typing import Any

from ferkit.errors import FerkitError, require
from ferkit.game import ScoreTracker, expression_score
from ferkit.labels import CLASS_NAMES, name_to_label
from ferkit.runtime import Recognizer

MAX_BYTES = 20 * 1024 * 1024  # a phone photo is a few MB; the pixel-count guard in preprocess does the rest
MAX_SESSIONS = 1024  # trackers kept, least recently used dropped first


class Sessions:
    """One ScoreTracker per (session id): a bounded, thread-safe LRU map."""

    def __init__(self, capacity: int = MAX_SESSIONS) -> None:
        self.capacity = capacity
        self._trackers: OrderedDict[str, ScoreTracker] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: str, target: str, reset: bool) -> ScoreTracker:
        """The session's tracker; a new one for a new session, a new target, or on reset (a new round)."""
        with self._lock:
            tracker = self._trackers.pop(session, None)
            if tracker is None or reset or tracker.target != target:
                tracker = ScoreTracker(target)
            self._trackers[session] = tracker
            while len(self._trackers) > self.capacity:
                self._trackers.popitem(last=False)
            return tracker

    def __len__(self) -> int:
        return len(self._trackers)


async def _image_bytes(request: Any, max_bytes: int) -> bytes:
    """The request's image: the body itself, or the first file of a multipart form."""
    from fastapi import HTTPException

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"the image is {int(declared):,} bytes; the limit is {max_bytes:,}")
    # Any other content type is taken as the image itself (`curl --data-binary` labels it a urlencoded form).
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        uploads = [v for v in form.values() if hasattr(v, "read")]
        if not uploads:
            raise HTTPException(400, "the multipart form holds no file: send the image as a file field")
        data = await uploads[0].read()
        if len(data) > max_bytes:
            raise HTTPException(413, f"the image is {len(data):,} bytes; the limit is {max_bytes:,}")
    else:  # streamed, so a body without a Content-Length (chunked) cannot fill memory past the limit
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise HTTPException(413, f"the image is over {max_bytes:,} bytes, the limit")
            chunks.append(chunk)
        data = b"".join(chunks)
    if not data:
        raise HTTPException(400, "the request holds no image: send its bytes as the body or as a form file")
    return data


def _target(name: str) -> str:
    from fastapi import HTTPException

    try:
        return CLASS_NAMES[name_to_label(name)]
    except ValueError as e:
        raise HTTPException(400, str(e)) from None


def create_app(recognizer: Recognizer | None = None, max_bytes: int = MAX_BYTES, max_sessions: int = MAX_SESSIONS):
    """A FastAPI app over `recognizer` (default: the bundled model)."""
    fastapi = require("fastapi", "serve")
    from fastapi import HTTPException, Request
    from fastapi.responses import HTMLResponse

    rec = recognizer or Recognizer.default()
    sessions = Sessions(max_sessions)
    # The face detector resizes its input per frame (setInputSize): one frame through it at a time.
    lock = threading.Lock()
    app = fastapi.FastAPI(title="ferkit", description="Facial-expression recognition and Best Actor scoring")

    def faces_of(data: bytes, crop: bool | None):
        try:
            with lock:
                return rec.predict(data, crop=crop)
        except FerkitError as e:  # a non-image, a truncated file, a decompression bomb: the message says which
            raise HTTPException(400, str(e)) from None

    @app.get("/health")
    def health() -> dict:
        return {
            "status": "ok",
            "model": rec.metadata.get("model_name"),
            "ferkit_version": rec.metadata.get("ferkit_version"),
            "labels": list(rec.labels),
            "contract": rec.contract,
        }

    @app.post("/predict")
    async def predict(request: Request, crop: bool | None = None) -> dict:
        faces = faces_of(await _image_bytes(request, max_bytes), crop)
        return {"faces": [f.to_dict() for f in faces]}

    @app.post("/score")
    async def score(
        request: Request, target: str, session: str | None = None, t: float | None = None, reset: bool = False
    ) -> dict:
        name = _target(target)
        faces = faces_of(await _image_bytes(request, max_bytes), None)
        # Without a session a frame stands alone, as `ferkit score` judges a photo: no settling time.
        tracker = sessions.get(session, name, reset) if session else ScoreTracker(name, settle_s=0.0)
        try:
            result = tracker.update(faces, t).to_dict()
        except ValueError as e:  # a frame time that goes back
            raise HTTPException(400, str(e)) from None
        return {
            **result,
            "session": session,
            "faces": [
                {**f.to_dict(), "target_score": round(expression_score(f.probabilities, name), 2)} for f in faces
            ],
        }

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (files("ferkit") / "web" / "index.html").read_text(encoding="utf-8")

    return app


def serve(model: str | None = None, host: str = "127.0.0.1", port: int = 8000, threads: int | None = None) -> None:
    """Run the app with uvicorn until interrupted."""
    uvicorn = require("uvicorn", "serve")
    rec = Recognizer.from_file(model, threads) if model else Recognizer.default(threads)
    uvicorn.run(create_app(rec), host=host, port=port)
