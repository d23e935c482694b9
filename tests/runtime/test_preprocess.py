"""Odd but valid images are scaled, not clipped; hostile or broken ones are ImageError (issue 21, 7 and 9)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ferkit.preprocess import ImageError, load_image

RAMP = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))  # (16, 64) gray levels 0..252


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: RAMP.astype(np.uint16) * 257, "uint16 array, full range"),
        (lambda: RAMP.astype(np.float32) / 255, "float 0..1"),
        (lambda: RAMP.astype(np.float32) / 127.5 - 1, "float -1..1"),
        (lambda: RAMP.astype(np.float64), "float 0..255"),
        (lambda: RAMP.astype(np.int32) * 257, "int32 holding 16-bit values"),
    ],
)
def test_arrays_are_scaled_by_their_range(make, why):
    got = load_image(make()).astype(int)
    assert np.abs(got - RAMP).max() <= 1, why


def test_16_bit_png_and_float_tiff_are_scaled_not_clipped():
    png16 = Image.fromarray(RAMP.astype(np.uint16) * 257)  # mode I;16
    assert np.abs(load_image(png_bytes(png16)).astype(int) - RAMP).max() <= 1
    tiff = Image.fromarray(RAMP.astype(np.float32) / 255)  # mode F
    assert np.abs(load_image(png_bytes(tiff, "TIFF")).astype(int) - RAMP).max() <= 1


@pytest.mark.parametrize(
    ("src", "message"),
    [
        (np.full((8, 8), 300.0), "span 300..300"),
        (np.full((8, 8), -5, np.int16), "negative values"),
        (np.zeros((8, 8), bool), "dtype bool"),
        (np.zeros((0, 5), np.uint8), "shape"),
    ],
)
def test_bad_arrays_are_named(src, message):
    with pytest.raises(ImageError, match=message):
        load_image(src)


def test_formats_a_camera_never_makes_are_refused():
    qoi = b"qoif" + (16).to_bytes(4, "big") + (16).to_bytes(4, "big") + b"\x03\x00" + b"\x00" * 5  # truncated QOI
    with pytest.raises(ImageError, match="supported format"):
        load_image(qoi)
    dds = b"DDS " + b"\x7c\x00\x00\x00" + b"\x00" * 40
    with pytest.raises(ImageError, match="supported format"):
        load_image(dds)


def test_truncated_and_closed_images_are_image_errors():
    data = png_bytes(Image.fromarray(RAMP))
    for cut in (len(data) // 2, 60, 30):
        with pytest.raises(ImageError):
            load_image(data[:cut])
    img = Image.open(io.BytesIO(data))
    img.close()
    with pytest.raises(ImageError, match="cannot be read"):
        load_image(img)
    lazy = Image.open(io.BytesIO(data))  # never loaded: decoded on demand
    assert load_image(lazy).shape == RAMP.shape


def test_zero_sized_pil_image_is_an_image_error():
    with pytest.raises(ImageError, match="empty"):
        load_image(Image.new("L", (0, 0)))
