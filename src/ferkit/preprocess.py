"""Images in, model input out: the one data contract shared by training, export and the runtime.

Everything here is NumPy/OpenCV/Pillow; no torch.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import ImageError
from ferkit.labels import FACE_SIZE

# A decompression-bomb guard: no photo or frame ferkit needs is larger than this.
MAX_PIXELS = 40_000_000
# What cameras, phones and image tools produce; anything else Pillow could open (QOI, DDS, ICNS, ...) is refused
# before its decoder runs: fewer decoders, fewer ways for a hostile file in.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "PPM")  # JPEG also opens phones' MPO files


def _from_pil(img: Any) -> np.ndarray:
    from PIL import ImageOps

    if img.width * img.height > MAX_PIXELS:
        raise ImageError(f"image is {img.width}x{img.height}: over the {MAX_PIXELS:,}-pixel limit")
    if img.width == 0 or img.height == 0:
        raise ImageError(f"image is {img.width}x{img.height}: empty")
    try:
        img.load()  # a lazily opened image decodes here; a closed one fails here
        img = ImageOps.exif_transpose(img)  # phone photos carry their rotation in EXIF
    except (OSError, ValueError, SyntaxError, AttributeError) as e:
        raise ImageError(f"the PIL image cannot be read ({type(e).__name__}: {str(e)[:150]})") from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit and float scans: scale by range, never clip
        arr = np.asarray(img)
        return _from_array(arr.astype(np.uint16) if img.mode.startswith("I;16") else arr)
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB").convert("RGB")
    arr = np.asarray(img)
    return arr if arr.ndim == 2 else arr[:, :, ::-1].copy()  # RGB -> BGR, OpenCV's order


def _decode(data: bytes, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"{name}: empty input")
    try:
        img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        if img.width * img.height > MAX_PIXELS:  # checked from the header, before decoding
            raise ImageError(f"{name}: image is {img.width}x{img.height}, over the {MAX_PIXELS:,}-pixel limit")
        img.load()
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image in a supported format ({', '.join(IMAGE_FORMATS)})") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: refused as a decompression bomb ({e})") from None
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, MemoryError) as e:
        # Pillow's decoders raise many types on damaged data; every one of them means the same to a caller
        raise ImageError(f"{name}: truncated or corrupt image ({type(e).__name__}: {str(e)[:150]})") from None
    try:
        return _from_pil(img)
    except ImageError as e:
        raise ImageError(f"{name}: {e}") from None


def _from_array(arr: np.ndarray) -> np.ndarray:
    if arr.size == 0 or arr.ndim not in (2, 3):
        raise ImageError(f"image array has shape {arr.shape}; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"image array has {arr.shape[2]} channels; expected 1 (gray), 3 (BGR) or 4 (BGRA)")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ImageError(f"image is {arr.shape[1]}x{arr.shape[0]}: over the {MAX_PIXELS:,}-pixel limit")
    if arr.dtype != np.uint8:
        arr = _to_uint8(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return np.ascontiguousarray(arr[:, :, :3] if arr.ndim == 3 else arr)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale by the dtype's range, never clip a valid image.

    Integers: unsigned types by their full range (uint16 65535 -> 255); signed types holding no negative value by
    the positive range of the values' own bit depth (8, 12, 16 bits: 16-bit PNGs arrive as int32). Floats (the
    documented convention): [0, 1] -> 0..255; [-1, 1] with negatives (a network's normalised input) -> 0..255;
    up to 255 -> taken as gray levels. Anything else is refused with the range it holds."""
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ImageError(f"image array has dtype {arr.dtype}; expected uint8 or a real number type")
    a = arr.astype(np.float64)
    if not np.isfinite(a).all():
        raise ImageError("image array holds NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if np.issubdtype(arr.dtype, np.integer):
        if lo < 0:
            raise ImageError(f"image array of {arr.dtype} holds negative values ({lo:g}); gray levels are >= 0")
        top = float(np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.unsignedinteger) else None
        if top is None:
            top = next(2.0**b - 1 for b in (8, 10, 12, 14, 16, 32) if hi <= 2.0**b - 1)
        a = a * (255.0 / top)
    elif lo >= 0 and hi <= 1.0:
        a = a * 255.0
    elif lo >= -1.0 and hi <= 1.0:
        a = (a + 1.0) * 127.5
    elif lo < 0 or hi > 255.0:
        raise ImageError(
            f"float image values span {lo:g}..{hi:g}; expected 0..1, -1..1 or 0..255 (see ferkit.preprocess)"
        )
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


COLORS = ("bgr", "rgb", "gray")


def load_image(src: Any, color: str = "bgr") -> np.ndarray:
    """A path, bytes, NumPy array or PIL image -> uint8 (H, W) or (H, W, 3) BGR.

    color says how to read a NumPy array's channels: "bgr" (OpenCV's order, the default), "rgb" (PIL, imageio,
    most deep-learning code) or "gray" (one channel). Files, bytes and PIL images carry their own order."""
    if color not in COLORS:
        raise ImageError(f"color must be one of {', '.join(COLORS)}, not {color!r}")
    if isinstance(src, (str, Path)):
        path = Path(src)
        if not path.is_file():
            raise ImageError(f"{path}: no such file")
        return _decode(path.read_bytes(), str(path))
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _decode(bytes(src), "image bytes")
    if isinstance(src, np.ndarray):
        arr = _from_array(src)
        if color == "gray" and arr.ndim == 3:
            raise ImageError(f"color='gray' but the array has {src.shape[2]} channels")
        return arr[:, :, ::-1].copy() if color == "rgb" and arr.ndim == 3 else arr
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
