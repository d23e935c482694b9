import gzip

import numpy as np
import pytest
from conftest import csv_text, make_faces, write_csv, write_folder

from ferkit.data import load_fer2013, read_csv, read_folder
from ferkit.errors import DataError


def test_fer2013_csv_roundtrip(fer_csv, faces):
    images, labels, usage = faces
    ds = read_csv(fer_csv)
    assert ds.layout == "fer2013-csv"
    assert ds.images.dtype == np.uint8 and ds.images.shape == (35, 48, 48)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.labels.dtype == np.int64
    assert list(ds.usage) == list(usage)
    assert ds.origin[0] == 2  # line numbers, header is line 1


def test_gzip_detected_by_content_not_name(tmp_path, faces):
    images, labels, usage = faces
    path = write_csv(tmp_path / "data.bin", csv_text(images, labels, usage), gz=True)
    np.testing.assert_array_equal(read_csv(path).images, images)


def test_icml_layout_with_leading_spaces(tmp_path, faces):
    images, labels, usage = faces
    text = csv_text(images, labels, usage, columns=("emotion", " Usage", " pixels"))
    ds = read_csv(write_csv(tmp_path / "icml_face_data.csv", text))
    assert ds.layout == "icml-csv"
    np.testing.assert_array_equal(ds.images, images)
    assert list(ds.usage) == list(usage)


def test_train_and_test_csv(tmp_path, faces):
    images, labels, _ = faces
    write_csv(tmp_path / "train.csv", csv_text(images[:20], labels[:20], columns=("emotion", "pixels")))
    write_csv(tmp_path / "test.csv", csv_text(images[20:], columns=("pixels",)))
    ds = load_fer2013(tmp_path)
    assert len(ds) == 35
    assert set(ds.usage[:20]) == {"Training"} and set(ds.usage[20:]) == {"Test"}
    assert (ds.labels[20:] == -1).all() and (ds.labels[:20] == labels[:20]).all()
    test_only = read_csv(tmp_path / "test.csv")
    assert test_only.layout == "test-csv" and not test_only.labeled


def test_forced_layout(tmp_path, fer_csv, faces):
    # forcing test-csv on a full file reads its pixels only, unlabeled
    ds = read_csv(fer_csv, layout="test-csv")
    assert ds.layout == "test-csv" and (ds.labels == -1).all() and len(ds) == len(faces[0])
    pixels_only = write_csv(tmp_path / "test.csv", csv_text(faces[0][:2], columns=("pixels",)))
    with pytest.raises(DataError, match=r"test.csv, line 1: header has columns \['pixels'\]; expected emotion,pixels"):
        read_csv(pixels_only, layout="train-csv")


def test_renamed_column_names_file_and_header(tmp_path):
    path = write_csv(tmp_path / "renamed.csv", "emotion,pixel,Usage\n0,1 2,Training\n")
    with pytest.raises(DataError, match=r"renamed.csv, line 1: header has columns \['emotion', 'pixel', 'usage'\]"):
        read_csv(path)


@pytest.mark.parametrize(
    "row, reason",
    [
        ("9,{p},Training", "label 9 is outside 0..6"),
        ("x,{p},Training", "label 'x' is not an integer"),
        ("0,{p},Validation", "unknown Usage 'Validation'"),
        ("0,1 2 3,Training", "expected 2304 pixels"),
        ("0,{p} 7,Training", "expected 2304 pixels"),
        ("0,{bad},Training", "non-numeric"),
        ("0,{neg},Training", "non-numeric"),
        ("0,{big},Training", "pixel value 256 is outside 0..255"),
        ("0,{p}", "expected 3 fields, found 2"),
    ],
)
def test_bad_rows_raise_with_file_and_line(tmp_path, faces, row, reason):
    images, labels, usage = faces
    p = " ".join(["5"] * 2304)
    bad = row.format(p=p, bad=p[:-1] + "a", neg="-1 " + p[2:], big="256 " + p[2:])
    lines = csv_text(images[:3], labels[:3], usage[:3]).splitlines()
    path = write_csv(tmp_path / "broken.csv", "\n".join([*lines[:2], bad, *lines[2:]]) + "\n")
    with pytest.raises(DataError) as err:
        read_csv(path)
    assert "broken.csv, line 3" in str(err.value) and reason in str(err.value)
    # skip mode keeps every good row and records the bad one with its reason
    ds = read_csv(path, on_error="skip")  # no raw UserWarning: the skips are data, the CLI reports them
    assert len(ds) == 3 and len(ds.skipped) == 1
    assert ds.skipped[0].where == "broken.csv, line 3" and reason in ds.skipped[0].reason
    np.testing.assert_array_equal(ds.images, images[:3])


def test_empty_and_header_only_files(tmp_path):
    with pytest.raises(DataError, match="empty file"):
        read_csv(write_csv(tmp_path / "empty.csv", ""))
    with pytest.raises(DataError, match="no valid data rows"):
        read_csv(write_csv(tmp_path / "header.csv", "emotion,pixels,Usage\n"))


def test_truncated_gzip(tmp_path, fer_csv):
    blob = gzip.compress(fer_csv.read_bytes())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="cut.csv.gz: truncated or corrupt gzip"):
        read_csv(path)


def test_windows_line_endings_and_quotes(tmp_path, faces):
    images, labels, usage = faces
    text = csv_text(images, labels, usage).replace("\n", "\r\n")
    text = text.replace(",Training", ',"Training"')
    np.testing.assert_array_equal(read_csv(write_csv(tmp_path / "crlf.csv", text)).images, images)


@pytest.mark.parametrize("size", [48, 96])
def test_image_folder_with_prefixes(tmp_path, faces, size):
    images, labels, usage = faces
    root = write_folder(tmp_path / "imgs", images, labels, usage, size=size)
    ds = load_fer2013(root)
    assert ds.layout == "folder" and len(ds) == 35
    assert sorted(ds.usage_names()) == sorted(set(usage))
    for u in set(usage):
        part = ds.subset(u)
        ref = np.sort(images[usage == u].reshape(-1, 2304).astype(int).sum(1))
        got = np.sort(part.images.reshape(-1, 2304).astype(int).sum(1))
        tol = 0 if size == 48 else 2304 * 1  # resize back from 96 px may move each pixel by ~1 level
        assert np.abs(ref - got).max() <= tol
        assert np.array_equal(np.sort(part.labels), np.sort(labels[usage == u]))


def test_image_folder_without_prefixes_uses_test_usage(tmp_path, faces):
    images, labels, usage = faces
    ds = read_folder(write_folder(tmp_path / "imgs", images, labels, usage, prefixed=False))
    assert set(ds.usage_names()) == {"Training", "Test"}


def test_image_folder_bad_files(tmp_path, faces):
    import cv2

    images, labels, usage = faces
    root = write_folder(tmp_path / "imgs", images[:10], labels[:10], usage[:10])
    (root / "train" / "angry" / "Training_broken.jpg").write_bytes(b"not an image at all")
    (root / "train" / "happy").mkdir(exist_ok=True)
    cv2.imwrite(str(root / "train" / "happy" / "Training_wide.png"), np.zeros((48, 60), np.uint8))
    (root / "train" / "happy" / "notes.txt").write_text("left out, and counted: not an image extension")
    with pytest.raises(DataError, match="Training_broken.jpg: not a readable image"):
        read_folder(root)
    ds = read_folder(root, on_error="skip")
    assert len(ds) == 10
    reasons = sorted(s.reason for s in ds.skipped)
    assert reasons[0] == "not a readable image" and reasons[1] == "not an image file (.txt)"
    assert reasons[2].startswith("odd-sized image 60x48")


def test_every_layout_gives_same_arrays(tmp_path):
    images, labels, usage = make_faces(14, seed=3)
    a = read_csv(write_csv(tmp_path / "a.csv", csv_text(images, labels, usage)))
    b = read_csv(
        write_csv(tmp_path / "b.csv.gz", csv_text(images, labels, usage, ("emotion", " Usage", " pixels")), True)
    )
    for x in (a, b):
        np.testing.assert_array_equal(x.images, images)
        np.testing.assert_array_equal(x.labels, labels)


def test_a_gzip_bomb_stops_at_the_limit(tmp_path):
    import zlib as _zlib

    from ferkit.data import csv_reader

    body = b"emotion,pixels,Usage\n" + b"0" * 50_000_000  # 50 MB of zeros: ~50 KB gzipped
    c = _zlib.compressobj(9, _zlib.DEFLATED, 31)
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(c.compress(body) + c.flush())
    assert path.stat().st_size < 200_000
    with pytest.raises(DataError, match="decompresses past 10,000,000 bytes"):
        csv_reader.read_bytes(path, max_bytes=10_000_000)


def test_millions_of_blank_lines_are_refused_before_allocating(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_bytes(b"emotion,pixels,Usage\n" + b"\n" * 1_200_000)
    with pytest.raises(DataError, match="more than 1,000,000 lines"):
        read_csv(path)


def test_truncated_gzip_and_cr_only_files(tmp_path, faces):
    import gzip as _gzip

    images, labels, usage = faces
    text = csv_text(images[:4], labels[:4], usage[:4])
    whole = _gzip.compress(text.encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="truncated"):
        read_csv(cut)
    mac = write_csv(tmp_path / "mac.csv", text.replace("\n", "\r"))
    np.testing.assert_array_equal(read_csv(mac).images, images[:4])  # CR-only line ends are read


def test_a_header_error_does_not_echo_a_huge_line(tmp_path):
    path = tmp_path / "one-line.csv"
    path.write_bytes(b"x," * 100_000)
    with pytest.raises(DataError) as e:
        read_csv(path)
    assert len(str(e.value)) < 800


def test_folder_read_counts_what_it_leaves_out(tmp_path):
    images, labels, usage = make_faces(14, seed=1)
    root = write_folder(tmp_path / "f", images, labels, usage)
    happy = root / "train" / "happy"
    (root / "train" / "smug").mkdir()  # no such class
    (happy / "nested").mkdir()
    (happy / "notes.txt").write_text("x")
    (happy / "gone.png").symlink_to(tmp_path / "missing.png")
    (happy / "loop.png").symlink_to(happy / "loop.png")
    ds = read_folder(root)
    reasons = sorted(s.reason.split(" (")[0] for s in ds.skipped)
    assert len(ds) == 14 and reasons == [
        "dangling or looping link",
        "dangling or looping link",
        "folder names no FER2013 class",
        "folder nested in a class folder",
        "not an image file",
    ]
