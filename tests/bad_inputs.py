"""The bad-input corpus: every hostile or careless input ferkit must meet with a clear error and no traceback.

`python tests/bad_inputs.py OUT` writes the file cases to OUT (one file each); the tests import `file_cases()` and
`array_cases()`. docs/RELIABILITY.md lists the cases and what each gets.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def _png_bomb(side: int = 30_000) -> bytes:
    """A valid PNG header claiming side x side pixels (900 M) over a tiny body: refused from the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")
    )


def file_cases() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, what it gets: "error" (an ImageError naming the problem) or "ok")."""
    face = np.clip(np.random.default_rng(0).normal(128, 40, (48, 48)), 0, 255).astype(np.uint8)
    png, jpeg = _png(face), _jpeg(np.stack([face] * 3, -1))
    return {
        "empty.png": (b"", "error"),
        "random.jpg": (np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "error"),
        "text.png": (b"this is not an image\n", "error"),
        "truncated.png": (png[: len(png) // 2], "error"),
        "truncated.jpg": (jpeg[:200], "error"),
        "header-only.png": (png[:33], "error"),
        "bomb.png": (_png_bomb(), "error"),
        "qoi.png": (b"qoif" + struct.pack(">II", 16, 16) + b"\x03\x00" + b"\x00" * 8, "error"),
        "dds.png": (b"DDS " + struct.pack("<I", 124) + b"\x00" * 120, "error"),
        "zero-size.png": (_zero_size_png(), "error"),
        "face.png": (png, "ok"),
        "face16.png": (_png(face.astype(np.uint16) * 257), "ok"),
        "face.jpg": (jpeg, "ok"),
    }


def _zero_size_png() -> bytes:
    good = _png(np.zeros((1, 1), np.uint8))
    return good[:16] + struct.pack(">II", 0, 0) + good[24:]  # IHDR claims 0 x 0 (CRC now wrong as well)


def array_cases() -> dict[str, tuple[object, str]]:
    """name -> (the array passed to the Python API, "error" or "ok")."""
    face = np.clip(np.random.default_rng(0).normal(128, 40, (48, 48)), 0, 255).astype(np.uint8)
    return {
        "empty": (np.zeros((0, 0), np.uint8), "error"),
        "1-d": (np.zeros(2304, np.uint8), "error"),
        "4-d": (np.zeros((1, 48, 48, 3), np.uint8), "error"),
        "2 channels": (np.zeros((48, 48, 2), np.uint8), "error"),
        "5 channels": (np.zeros((48, 48, 5), np.uint8), "error"),
        "bool": (face > 128, "error"),
        "complex": (face.astype(np.complex64), "error"),
        "object": (np.array([[object()]]), "error"),
        "nan": (np.full((48, 48), np.nan, np.float32), "error"),
        "float out of range": (face.astype(np.float32) * 10, "error"),
        "negative int": (face.astype(np.int16) - 300, "error"),
        "huge": (np.zeros((1, 50_000_001), np.uint8)[:, :0], "error"),  # an empty view: no memory
        "tiny": (np.zeros((3, 3), np.uint8), "error"),
        "uint16": (face.astype(np.uint16) * 257, "ok"),
        "float 0..1": (face / 255.0, "ok"),
        "float -1..1": (face / 127.5 - 1, "ok"),
        "BGRA": (np.dstack([face, face, face, np.full_like(face, 255)]), "ok"),
    }


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs")
    out.mkdir(parents=True, exist_ok=True)
    for name, (data, _) in file_cases().items():
        (out / name).write_bytes(data)
    print(f"wrote {len(file_cases())} files to {out}")
