"""HTTP API and a one-page web game over the torch-free Recognizer (FastAPI; `pip install 'ferkit[serve]'`).

Endpoints (every image is sent as the request body, raw bytes or a multipart form with one file):
- `GET /health`: the model's name, labels and contract; for probes and for clients to learn the labels.
- `POST /predict[?crop=true|false]`: every face's box, eyes, detection score, probabilities and expression.
- `POST /session`: a new player session: an unguessable id issued by the server, expiring after `session_ttl_s`
  of disuse.
- `POST /score?target=happy[&session=ID][&t=SECONDS][&reset=true]`: the Best Actor score of one frame. With a
  `session` (one issued by `POST /session`), frames of one player are tracked by `ferkit.game.ScoreTracker`
  (time-based smoothing, hold through missed detections, the round's best) and the player's face is followed from
  frame to frame (ferkit.faces.FaceTracker); without one, the frame is scored alone.

Trust model: the server is meant for one game on a trusted network (a phone and a laptop). A session id is a bearer
token: whoever holds it can score, reset or re-target that round, so ids are random (128 bits), issued by the
server and expire. No CORS header is sent unless origins are allowed (`allow_origins`), and a browser request whose
`Origin` is another site is refused (403), so a page elsewhere cannot drive it; `allowed_hosts` pins the Host
header; the OpenAPI pages (`/docs`) are off unless asked for.
- `GET /`: a web page that plays the game with the browser's camera (or a chosen photo) through `/score`.

Bad input never becomes a 500: a non-image, an empty body, an unknown target, a non-finite time get 400 with
ferkit's message naming the problem; a body over `max_bytes` gets 413 as soon as it passes the limit, whatever its
type or transfer encoding (nothing beyond the limit is read or spooled). Inference runs in worker threads, so
`/health` answers while `/predict` is busy. This is the runtime layer: no torch.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and `Request` is imported
# inside create_app (fastapi is an optional extra), so they must be evaluated where they are written.

import asyncio
import secrets
import threading
import time
from collections import OrderedDict
from importlib.resources import files
from typing import Any

from ferkit.errors import FerkitError, UnknownSession, require
from ferkit.game import ScoreTracker, expression_score
from ferkit.labels import CLASS_NAMES, name_to_label
from ferkit.runtime import Recognizer

MAX_BYTES = 20 * 1024 * 1024  # a phone photo is a few MB; the pixel-count guard in preprocess does the rest
MAX_SESSIONS = 1024  # trackers kept, least recently used dropped first
SESSION_TTL_S = 600.0  # a session unused this long is gone
MULTIPART_OVERHEAD = 64 * 1024  # form boundaries and headers around the file
# A client that stalls mid-body holds a connection and a buffer: each chunk must come within BODY_IDLE_S and the
# whole body within body_timeout_s (20 MB at 2 Mbit/s, a slow phone link, is ~80 s), else 408.
BODY_IDLE_S = 10.0
BODY_TIMEOUT_S = 120.0


class Sessions:
    """One ScoreTracker per server-issued session id: a bounded, thread-safe LRU map whose entries expire."""

    def __init__(
        self, capacity: int = MAX_SESSIONS, ttl_s: float = SESSION_TTL_S, clock=time.monotonic, face_tracker=None
    ) -> None:
        """face_tracker: makes a session's FaceTracker (`Recognizer.tracker`), kept and expired with the session."""
        self.capacity, self.ttl_s, self.clock, self._new_face_tracker = capacity, ttl_s, clock, face_tracker
        self._trackers: OrderedDict[str, tuple[ScoreTracker | None, float]] = OrderedDict()
        self._faces: dict[str, Any] = {}  # session -> its FaceTracker, made on its first frame
        self._lock = threading.Lock()

    def new(self) -> str:
        """A fresh session id: 128 random bits, never derived from anything a client sent."""
        sid = secrets.token_urlsafe(16)
        with self._lock:
            self._trackers[sid] = (None, self.clock())
            self._trim()
        return sid

    def get(self, session: str, target: str, reset: bool) -> ScoreTracker:
        """The session's tracker; a new one for a new target or on reset (a new round). Unknown ids are refused."""
        with self._lock:
            self._expire()
            if session not in self._trackers:
                raise UnknownSession(f"unknown or expired session {session[:40]!r}: start one with POST /session")
            tracker, _ = self._trackers.pop(session)
            if tracker is None or reset or tracker.target != target:
                tracker = ScoreTracker(target)
            self._trackers[session] = (tracker, self.clock())
            return tracker

    def face_tracker(self, session: str):
        """The FaceTracker following this session's player (None without a factory or for an unknown session)."""
        with self._lock:
            if self._new_face_tracker is None or session not in self._trackers:
                return None
            if session not in self._faces:
                self._faces[session] = self._new_face_tracker()
            return self._faces[session]

    def _expire(self) -> None:
        now = self.clock()
        while self._trackers:
            sid, (_, used) = next(iter(self._trackers.items()))
            if now - used <= self.ttl_s:
                break
            del self._trackers[sid]
            self._faces.pop(sid, None)

    def _trim(self) -> None:
        self._expire()
        while len(self._trackers) > self.capacity:
            sid, _ = self._trackers.popitem(last=False)
            self._faces.pop(sid, None)

    def __len__(self) -> int:
        return len(self._trackers)


async def _bounded_body(request: Any, limit: int, timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    """The whole body, counted as it streams: past `limit` bytes the request is refused before reading further,
    whatever its Content-Length says (or does not say: chunked uploads) and whatever its type. A body that stalls
    (no bytes for BODY_IDLE_S) or trickles (not complete within `timeout_s`) is refused with 408."""
    from fastapi import HTTPException
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    chunks, size, stream = [], 0, request.stream().__aiter__()
    while True:
        wait = min(BODY_IDLE_S, deadline - loop.time())
        try:
            chunk = await asyncio.wait_for(anext(stream), max(wait, 0.0))
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise HTTPException(
                408, f"the body did not arrive in time ({size:,} bytes came); send it at once"
            ) from None
        except ClientDisconnect:
            # Nobody is left to answer; a plain 400 ends the request quietly instead of an ASGI traceback.
            raise HTTPException(400, "the client disconnected before the body arrived") from None
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is over {limit:,} bytes, the limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def _image_bytes(request: Any, max_bytes: int, timeout_s: float = BODY_TIMEOUT_S) -> bytes:
    """The request's image: the body itself, or the first file of a multipart form."""
    from fastapi import HTTPException

    # Any other content type is taken as the image itself (`curl --data-binary` labels it a urlencoded form).
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        # The form is parsed from the bounded body already in memory (Starlette reads a cached body), never
        # spooled from the socket: an oversized upload stops at the limit instead of filling /tmp first.
        request._body = await _bounded_body(request, max_bytes + MULTIPART_OVERHEAD, timeout_s)
        try:
            form = await request.form()
        except Exception as e:  # a malformed form: python-multipart's own error types
            raise HTTPException(400, f"a malformed multipart form ({str(e)[:200]})") from None
        uploads = [v for v in form.values() if hasattr(v, "read")]
        if not uploads:
            raise HTTPException(400, "the multipart form holds no file: send the image as a file field")
        data = await uploads[0].read()
        if len(data) > max_bytes:
            raise HTTPException(413, f"the image is {len(data):,} bytes; the limit is {max_bytes:,}")
    else:
        data = await _bounded_body(request, max_bytes, timeout_s)
    if not data:
        raise HTTPException(400, "the request holds no image: send its bytes as the body or as a form file")
    return data


def _target(name: str) -> str:
    from fastapi import HTTPException

    try:
        return CLASS_NAMES[name_to_label(name)]
    except ValueError as e:
        raise HTTPException(400, str(e)) from None


def _same_origin(origin: str, host: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(origin).netloc.lower() == host.lower()


def create_app(
    recognizer: Recognizer | None = None,
    max_bytes: int = MAX_BYTES,
    max_sessions: int = MAX_SESSIONS,
    session_ttl_s: float = SESSION_TTL_S,
    allow_origins: list[str] | None = None,
    allowed_hosts: list[str] | None = None,
    docs: bool = False,
    body_timeout_s: float = BODY_TIMEOUT_S,
):
    """A FastAPI app over `recognizer` (default: the bundled model). See the module's trust model."""
    fastapi = require("fastapi", "serve")
    from fastapi import HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool

    rec = recognizer or Recognizer.default()
    sessions = Sessions(max_sessions, session_ttl_s, face_tracker=rec.tracker)
    # The face detector resizes its input per frame (setInputSize): one frame through it at a time.
    lock = threading.Lock()
    pages = {} if docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = fastapi.FastAPI(title="ferkit", description="Facial-expression recognition and Best Actor scoring", **pages)
    allowed = set(allow_origins or [])
    if allowed:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=sorted(allowed), allow_methods=["GET", "POST"])
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.middleware("http")
    async def refuse_other_sites(request: Request, call_next):
        # A page on another site can POST "simple" requests (text/plain, forms) without a CORS preflight; the
        # browser still names that site in Origin, so refuse it unless it is this server or an allowed origin.
        origin = request.headers.get("origin")
        if origin and origin not in allowed and not _same_origin(origin, request.headers.get("host", "")):
            return JSONResponse({"detail": f"requests from {origin[:100]} are not allowed"}, status_code=403)
        return await call_next(request)

    def faces_of(data: bytes, crop: bool | None, tracker=None):
        try:
            with lock:  # a session's FaceTracker follows its player's face: a fraction of a whole-frame search
                return rec.predict(data, crop=crop, tracker=tracker)
        except FerkitError as e:  # a non-image, a truncated file, a decompression bomb: the message says which
            raise HTTPException(400, str(e)) from None

    @app.get("/health")
    async def health() -> dict:  # on the event loop itself: never queued behind inference threads
        return {
            "status": "ok",
            "model": rec.metadata.get("model_name"),
            "ferkit_version": rec.metadata.get("ferkit_version"),
            "labels": list(rec.labels),
            "contract": rec.contract,
            "can": {  # what this server can do with its model (checked when the model was loaded)
                "predict": True,
                "score_targets": [label for label in rec.labels if label in CLASS_NAMES],
                "max_body_bytes": max_bytes,
            },
        }

    @app.post("/predict")
    async def predict(request: Request, crop: bool | None = None) -> dict:
        data = await _image_bytes(request, max_bytes, body_timeout_s)
        faces = await run_in_threadpool(faces_of, data, crop)  # off the event loop
        return {"faces": [f.to_dict() for f in faces]}

    @app.post("/session")
    async def new_session() -> dict:
        return {"session": sessions.new(), "expires_after_idle_s": sessions.ttl_s}

    @app.post("/score")
    async def score(
        request: Request, target: str, session: str | None = None, t: float | None = None, reset: bool = False
    ) -> dict:
        name = _target(target)
        data = await _image_bytes(request, max_bytes, body_timeout_s)
        # Without a session a frame stands alone, as `ferkit score` judges a photo: no settling time.
        try:
            tracker = sessions.get(session, name, reset) if session else ScoreTracker(name, settle_s=0.0)
        except UnknownSession as e:
            raise HTTPException(404, str(e)) from None
        faces = await run_in_threadpool(faces_of, data, None, sessions.face_tracker(session) if session else None)
        try:
            result = tracker.update(faces, t).to_dict()
        except ValueError as e:  # a frame time that goes back, or is not finite
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


def serve(
    model: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int | None = None,
    allow_origins: list[str] | None = None,
    allowed_hosts: list[str] | None = None,
    docs: bool = False,
    https: bool = False,
    cert: str | None = None,
    key: str | None = None,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> None:
    """Run the app with uvicorn until interrupted; slow clients are timed out (an idle keep-alive after 5 s, a
    stalled or trickling body with 408 after BODY_IDLE_S / `body_timeout_s`).

    https: TLS with `cert`/`key`, or a self-signed certificate made for this machine's addresses (kept in the cache
    folder), and the URLs to open on a phone printed."""
    uvicorn = require("uvicorn", "serve")
    rec = Recognizer.load(model, threads)
    app = create_app(
        rec, allow_origins=allow_origins, allowed_hosts=allowed_hosts, docs=docs, body_timeout_s=body_timeout_s
    )
    tls = {}
    if https or cert:
        from ferkit.data.cache import cache_dir
        from ferkit.tls import machine_addresses, phone_urls, self_signed

        if not cert:
            names = sorted({*machine_addresses(), *([host] if host not in ("0.0.0.0", "::") else [])})
            cert, key = (str(p) for p in self_signed(cache_dir() / "tls", names))
        tls = {"ssl_certfile": cert, "ssl_keyfile": key}
        print("open on the phone (same network; accept the self-signed certificate once):", *phone_urls(host, port))
    uvicorn.run(app, host=host, port=port, timeout_keep_alive=5, log_level="warning", **tls)
