"""Face detection (OpenCV's YuNet) and alignment to FER2013's framing.

The YuNet weights (face_detection_yunet_2023mar.onnx, MIT, from opencv_zoo) ship inside ferkit itself
(`ferkit/weights/`, with their licence); they are found with importlib.resources and never downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferkit.errors import FerkitError
from ferkit.labels import FACE_SIZE
from ferkit.preprocess import to_bgr

# FER2013's framing, measured on PublicTest (3,345 of 3,589 faces found by YuNet on 4x upscaled images;
# see docs/RESULTS.md): eyes 16.95 px apart, their midpoint at (23.74, 18.22) of the 48 px face.
FER_EYE_DISTANCE = 16.95
FER_EYE_CENTER = (24.0, 18.22)  # x centred: the measured 23.74 is half a pixel off centre, a detector bias
DETECT_MAX_SIDE = 960  # frames are shrunk to this for detection; crops come from the full-size image
MIN_SIDE = 16  # smaller images cannot hold a detectable face


YUNET_FILE = "face_detection_yunet_2023mar.onnx"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


def yunet_path() -> Path:
    """The YuNet weights shipped in ferkit/weights/ (checked by a test against YUNET_SHA256)."""
    from importlib.resources import files

    path = Path(str(files("ferkit") / "weights" / YUNET_FILE))
    if not path.is_file():
        raise FerkitError(f"{path} is missing from this install: reinstall ferkit")
    return path


@dataclass
class Detection:
    box: tuple[float, float, float, float]  # x, y, w, h in image pixels
    right_eye: tuple[float, float]  # the subject's right eye (image left)
    left_eye: tuple[float, float]
    score: float


class FaceDetector:
    """YuNet; the input size follows each frame (setInputSize), as the detector requires."""

    def __init__(self, score_threshold: float = 0.65, nms_threshold: float = 0.3, top_k: int = 50) -> None:
        import cv2

        self._det = cv2.FaceDetectorYN.create(str(yunet_path()), "", (320, 320), score_threshold, nms_threshold, top_k)
        self._size: tuple[int, int] | None = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        """uint8 gray or BGR image -> faces, best score first; [] when none (or the image is too small)."""
        import cv2

        h, w = image.shape[:2]
        if min(h, w) < MIN_SIDE:
            return []
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        frame = to_bgr(image)
        if scale < 1.0:
            frame = cv2.resize(
                frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
            )
        size = (frame.shape[1], frame.shape[0])
        if size != self._size:
            self._det.setInputSize(size)
            self._size = size
        _, found = self._det.detect(frame)
        if found is None:
            return []
        found = found[np.argsort(-found[:, -1])] / np.r_[[scale] * 14, 1.0]  # back to full-size pixels
        return [
            Detection(tuple(map(float, f[0:4])), (float(f[4]), float(f[5])), (float(f[6]), float(f[7])), float(f[14]))
            for f in found
        ]


def align_matrix(right_eye, left_eye, margin: float = 1.0, size: int = FACE_SIZE) -> np.ndarray:
    """2x3 similarity transform putting the eyes level where FER2013 has them (margin > 1 shows more around)."""
    (x1, y1), (x2, y2) = right_eye, left_eye
    dist = max(float(np.hypot(x2 - x1, y2 - y1)), 1e-3)
    scale = (FER_EYE_DISTANCE * size / FACE_SIZE) / (dist * margin)
    angle = np.arctan2(y2 - y1, x2 - x1)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    tx, ty = FER_EYE_CENTER[0] * size / FACE_SIZE, FER_EYE_CENTER[1] * size / FACE_SIZE
    # rotate by -angle and scale about the eye midpoint, then move it to the template's eye centre
    return np.array([[c, s, tx - c * mx - s * my], [-s, c, ty + s * mx - c * my]], dtype=np.float64)


def align_face(gray: np.ndarray, det: Detection, margin: float = 1.0) -> np.ndarray:
    """(H, W) uint8 -> (48, 48) uint8: eyes levelled, scaled and placed as in FER2013; borders replicated."""
    import cv2

    # Warp at 4x, then shrink with an area filter: a direct warp of a big face to 48 px would alias.
    big = FACE_SIZE * 4
    m = align_matrix(det.right_eye, det.left_eye, margin, big)
    warped = cv2.warpAffine(gray, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(warped, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
