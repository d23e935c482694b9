"""Images in, model input out: the one data contract shared by training, export and the runtime.

Everything here is NumPy/OpenCV/Pillow; no torch.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import FerkitError

# A decompression-bomb guard: no photo or frame ferkit needs is larger than this.
MAX_PIXELS = 40_000_000
FACE_SIZE = 48


class ImageError(FerkitError, ValueError):
    """An input that is not a usable image; the message says what is wrong with it."""


def _from_pil(img: Any) -> np.ndarray:
    from PIL import ImageOps

    if img.width * img.height > MAX_PIXELS:
        raise ImageError(f"image is {img.width}x{img.height}: over the {MAX_PIXELS:,}-pixel limit")
    img = ImageOps.exif_transpose(img)  # phone photos carry their rotation in EXIF
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB").convert("RGB")
    arr = np.asarray(img)
    return arr if arr.ndim == 2 else arr[:, :, ::-1].copy()  # RGB -> BGR, OpenCV's order


def _decode(data: bytes, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"{name}: empty input")
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:  # checked from the header, before decoding
            raise ImageError(f"{name}: image is {img.width}x{img.height}, over the {MAX_PIXELS:,}-pixel limit")
        img.load()
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (unrecognised format)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: refused as a decompression bomb ({e})") from None
    except OSError as e:
        raise ImageError(f"{name}: truncated or corrupt image ({e})") from None
    return _from_pil(img)


def _from_array(arr: np.ndarray) -> np.ndarray:
    if arr.size == 0 or arr.ndim not in (2, 3):
        raise ImageError(f"image array has shape {arr.shape}; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"image array has {arr.shape[2]} channels; expected 1 (gray), 3 (BGR) or 4 (BGRA)")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ImageError(f"image is {arr.shape[1]}x{arr.shape[0]}: over the {MAX_PIXELS:,}-pixel limit")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise ImageError(f"image array has dtype {arr.dtype}; expected uint8 or a real number type")
        a = arr.astype(np.float32)
        if not np.isfinite(a).all():
            raise ImageError("image array holds NaN or infinite values")
        a = a * 255.0 if a.max(initial=0) <= 1.0 else a  # floats in [0, 1] are scaled, larger ones taken as 0..255
        arr = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return np.ascontiguousarray(arr[:, :, :3] if arr.ndim == 3 else arr)


def load_image(src: Any) -> np.ndarray:
    """A path, bytes, NumPy array (gray, BGR, BGRA; uint8 or float) or PIL image -> uint8 (H, W) or (H, W, 3) BGR."""
    if isinstance(src, (str, Path)):
        path = Path(src)
        if not path.is_file():
            raise ImageError(f"{path}: no such file")
        return _decode(path.read_bytes(), str(path))
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _decode(bytes(src), "image bytes")
    if isinstance(src, np.ndarray):
        return _from_array(src)
    if type(src).__module__.startswith("PIL."):
        return _from_pil(src)
    raise ImageError(
        f"cannot read an image from a {type(src).__name__}; pass a path, bytes, a NumPy array or a PIL image"
    )


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) BGR -> uint8 (H, W)."""
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def to_bgr(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def resize_face(gray: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """A whole gray image taken as a face crop -> (size, size) uint8 (area filter when shrinking)."""
    import cv2

    if gray.shape == (size, size):
        return gray
    shrink = gray.shape[0] > size or gray.shape[1] > size
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def faces_to_input(faces: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, 1, 48, 48) float32 gray levels 0..255: exported models normalise inside."""
    return faces.astype(np.float32)[:, None]
