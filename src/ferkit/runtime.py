"""The torch-free recognizer: ONNX Runtime + YuNet faces + the model's own metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.bundled import BUNDLED, bundled_model_path
from ferkit.contract import ModelFileError, parse_contract
from ferkit.faces import Detection, FaceDetector, FaceTracker, align_face
from ferkit.metrics import softmax
from ferkit.preprocess import ImageError, faces_to_input, load_image, resize_face, to_gray

# Images this small are face crops already (FER2013 is 48x48): they are classified without detection.
CROP_MAX_SIDE = 64
MIN_CROP_SIDE = 8
LOGIT_BATCH = 256  # faces per ONNX Runtime call
# Keys every ferkit ONNX file carries in its metadata_props; nothing is inferred from the file name.
REQUIRED_METADATA = ("ferkit_contract",)


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the input image
    eyes: tuple[tuple[float, float], tuple[float, float]] | None  # (subject's right, left); None for crops
    score: float  # detection confidence (1.0 for a given crop)
    probabilities: dict[str, float]
    expression: str
    crop: np.ndarray = field(repr=False, default=None)  # (48, 48) uint8, what the model saw

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "eyes": [list(e) for e in self.eyes] if self.eyes else None,
            "score": round(self.score, 4),
            "expression": self.expression,
            "probabilities": {k: round(v, 5) for k, v in self.probabilities.items()},
        }


class Recognizer:
    """`Recognizer.default().predict("photo.jpg")` -> one Face per face found."""

    def __init__(self, session, contract: dict, metadata: dict, source: str) -> None:
        self.session, self.contract, self.metadata, self.source = session, contract, metadata, source
        self.labels: tuple[str, ...] = tuple(contract["labels"])
        self.temperature = float(contract.get("temperature", 1.0))
        self.margin = float(contract.get("face_margin", 1.0))
        self._input = session.get_inputs()[0].name
        self._detector: FaceDetector | None = None

    @classmethod
    def from_file(cls, path: str | Path, threads: int | None = None, session_options=None) -> Recognizer:
        """session_options: an onnxruntime.SessionOptions to start from (benchmarks try threading settings)."""
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such model file")
        opts = session_options or ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelFileError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:200]})") from None
        meta = dict(session.get_modelmeta().custom_metadata_map)
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            raise ModelFileError(
                f"{path}: not a ferkit model (metadata lacks {', '.join(missing)}); export it with ferkit"
            )
        return cls(session, parse_contract(session, meta["ferkit_contract"], path), meta, str(path))

    @classmethod
    def default(cls, name: str = "default", threads: int | None = None) -> Recognizer:
        """A bundled model by name: "default" (most accurate) or "mobile" (the phone student, fastest)."""
        path = bundled_model_path(name)
        if not path.is_file():
            raise ModelFileError(f"the bundled model {name!r} is missing from this install ({path})")
        return cls.from_file(path, threads)

    @classmethod
    def load(cls, model: str | Path | None = None, threads: int | None = None) -> Recognizer:
        """What every `--model` means: a bundled model's name (None: the default), else an exported ferkit .onnx."""
        if model is None or str(model) in BUNDLED:
            return cls.default(str(model or "default"), threads)
        return cls.from_file(model, threads)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector()
        return self._detector

    def logits(self, faces: np.ndarray, batch: int = LOGIT_BATCH) -> np.ndarray:
        """(N, 48, 48) uint8 -> (N, 7) float32 logits, in ONNX calls of at most `batch` faces.

        Bounded batches bound memory: one call on all 28,709 Training faces asked for over 23 GB of activations."""
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        parts = [
            self.session.run(None, {self._input: faces_to_input(faces[i : i + batch])})[0]
            for i in range(0, len(faces), batch)
        ]
        return np.concatenate(parts)

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 -> (N, 7) calibrated probabilities (the model's temperature applied)."""
        return softmax(self.logits(faces).astype(np.float64), self.temperature).astype(np.float32)

    def tracker(self) -> FaceTracker:
        """A FaceTracker over this recognizer's detector: pass it to predict() frame after frame (one player)."""
        return FaceTracker(self.detector)

    def find_faces(
        self, image: Any, crop: bool | None = None, color: str = "bgr", tracker: FaceTracker | None = None
    ) -> list[tuple[np.ndarray, Detection | None, tuple]]:
        """(48x48 face, detection or None, box) for each face. crop=None decides: small images are crops.
        tracker: frames of one video in order, searched around the last face (see FaceTracker)."""
        img = load_image(image, color)
        h, w = img.shape[:2]
        is_crop = crop if crop is not None else max(h, w) <= CROP_MAX_SIDE
        gray = to_gray(img)
        if is_crop:
            if min(h, w) < MIN_CROP_SIDE:
                raise ImageError(f"image is {w}x{h}: too small to be a face crop (at least {MIN_CROP_SIDE} px a side)")
            return [(resize_face(gray), None, (0, 0, w, h))]
        return [
            (align_face(gray, d, self.margin), d, tuple(round(v) for v in d.box))
            for d in (tracker or self.detector).detect(img)
        ]

    def predict(
        self, image: Any, crop: bool | None = None, color: str = "bgr", tracker: FaceTracker | None = None
    ) -> list[Face]:
        """One image (path, bytes, array, PIL) -> a Face per face found, best detection first; [] when none.

        color: the channel order of a NumPy array: "bgr" (default, OpenCV), "rgb" or "gray".
        tracker: `rec.tracker()`, reused frame after frame of one player's video (faster; that player only)."""
        return self.predict_batch([image], crop, color, tracker)[0]

    def stream(self, source: str | Path | int, every: int = 1, crop: bool | None = False, track: bool = True):
        """`for t, faces in rec.stream("clip.mp4" or 0)`: every `every`-th frame of a video file (t from the
        container's timestamps: phone videos have variable frame rates) or a camera index (t from the clock).
        track: follow the player with a FaceTracker (the game's case: one player, a fraction of the detection
        time); False: every face of every frame."""
        from ferkit.media import timed_frames

        tracker = self.tracker() if track else None
        for t, frame in timed_frames(source, every):
            yield t, self.predict(frame, crop=crop, tracker=tracker)

    def predict_batch(
        self, images: list[Any], crop: bool | None = None, color: str = "bgr", tracker: FaceTracker | None = None
    ) -> list[list[Face]]:
        """Many images; all their faces go through the model in one ONNX call."""
        found = [self.find_faces(im, crop, color, tracker) for im in images]
        flat = [f for per_image in found for f in per_image]
        probs = self.probabilities(np.stack([f[0] for f in flat])) if flat else np.zeros((0, 7))
        out, k = [], 0
        for per_image in found:
            faces = []
            for face, det, box in per_image:
                p = probs[k]
                k += 1
                faces.append(
                    Face(
                        box=box,
                        eyes=(det.right_eye, det.left_eye) if det else None,
                        score=det.score if det else 1.0,
                        probabilities={n: float(v) for n, v in zip(self.labels, p, strict=True)},
                        expression=self.labels[int(np.argmax(p))],
                        crop=face,
                    )
                )
            out.append(faces)
        return out
