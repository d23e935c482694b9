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
# A tracked window (twice the face) is searched at this size: the face is then ~64 px. Chosen by
# benchmarks/bench_runtime.py --windows 200 128 112 96 (docs/RESULTS.md): 1.6x faster than 200 px and no accuracy
# lost against the whole-frame search on the margin study's PublicTest protocol; 112 px was no faster, 96 px lost some.
TRACK_WINDOW_PX = 128


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

    def detect(self, image: np.ndarray, max_side: int = DETECT_MAX_SIDE) -> list[Detection]:
        """uint8 gray or BGR image -> faces, best score first; [] when none (or the image is too small).
        The image is shrunk to `max_side` for the search; boxes and eyes are given in its own pixels."""
        import cv2

        h, w = image.shape[:2]
        if min(h, w) < MIN_SIDE:
            return []
        scale = min(1.0, max_side / max(h, w))
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


class FaceTracker:
    """Follows one player from frame to frame: YuNet searches a window around the last face (twice its size,
    shrunk to `window_px`) instead of the whole frame -- a 640x480 frame becomes a 128x128 search, 19x fewer
    pixels. The whole frame is searched again when the window loses the face, and every `redetect_every` frames
    (a second player, a jump).

    `detect(frame)` returns the player's face only while tracking (the game scores one player), every face on
    full-frame searches."""

    def __init__(
        self, detector: FaceDetector, window: float = 2.0, redetect_every: int = 30, window_px: int = TRACK_WINDOW_PX
    ) -> None:
        self.detector, self.window, self.redetect_every, self.window_px = detector, window, redetect_every, window_px
        self._last: Detection | None = None
        self._side = 0  # the window's side in pixels, fixed while tracking so YuNet keeps its input size
        self._since = 0  # frames since the last full-frame search

    def detect(self, image: np.ndarray) -> list[Detection]:
        if self._last is not None and self._since < self.redetect_every:
            self._since += 1
            found = self._in_window(image)
            if found:
                self._last = found[0]
                return found[:1]
        found = self.detector.detect(image)
        self._last, self._since = (found[0] if found else None), 0
        if self._last is not None:
            self._side = int(max(self._last.box[2:]) * self.window)
        return found

    def _in_window(self, image: np.ndarray) -> list[Detection]:
        """The detections inside a fixed-size window centred on the last face (shifted to stay in the frame)."""
        h, w = image.shape[:2]
        x, y, bw, bh = self._last.box
        side = min(self._side, w, h)
        x0 = int(np.clip(x + bw / 2 - side / 2, 0, w - side))
        y0 = int(np.clip(y + bh / 2 - side / 2, 0, h - side))
        found = self.detector.detect(image[y0 : y0 + side, x0 : x0 + side], max_side=self.window_px)
        return [_shifted(d, x0, y0) for d in found]


def _shifted(d: Detection, dx: float, dy: float) -> Detection:
    """A detection made in a window, in the coordinates of the whole frame."""
    (x, y, bw, bh), (rx, ry), (lx, ly) = d.box, d.right_eye, d.left_eye
    return Detection((x + dx, y + dy, bw, bh), (rx + dx, ry + dy), (lx + dx, ly + dy), d.score)


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
