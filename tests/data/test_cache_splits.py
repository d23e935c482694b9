import numpy as np
import pytest
from conftest import csv_text, make_faces, write_csv

from ferkit.data import (
    duplicate_groups,
    holdout_without_shared_images,
    load_fer2013,
    make_splits,
    quality_report,
    read_csv,
)
from ferkit.data import source as source_mod
from ferkit.errors import DataError


def test_cache_roundtrip_and_warm_path_skips_parsing(fer_csv, monkeypatch):
    cold = load_fer2013(fer_csv)

    def fail(*a, **k):
        raise AssertionError("warm load must not parse the CSV again")

    monkeypatch.setattr(source_mod, "read_csv", fail)
    warm = load_fer2013(fer_csv)
    for name in ("images", "labels", "usage", "origin"):
        np.testing.assert_array_equal(getattr(warm, name), getattr(cold, name))
    assert warm.layout == cold.layout and warm.source == cold.source


def test_cache_invalidated_when_source_changes(tmp_path):
    images, labels, usage = make_faces(14)
    path = write_csv(tmp_path / "fer2013.csv", csv_text(images, labels, usage))
    assert len(load_fer2013(path)) == 14
    write_csv(path, csv_text(images[:7], labels[:7], usage[:7]))
    assert len(load_fer2013(path)) == 7


def test_skip_mode_cached_separately_from_raise(tmp_path, faces):
    images, labels, usage = faces
    text = csv_text(images, labels, usage) + "7,1 2,Training\n"
    path = write_csv(tmp_path / "fer2013.csv", text)
    assert len(load_fer2013(path, on_error="skip").skipped) == 1
    with pytest.raises(DataError, match="line 37"):
        load_fer2013(path)  # the cached skip-mode result must not hide the error
    assert len(load_fer2013(path, on_error="skip").skipped) == 1  # cached copy keeps the reasons


def test_official_split(fer_csv, faces):
    s = make_splits(read_csv(fer_csv), "official")
    _, _, usage = faces
    assert (len(s.train), len(s.val), len(s.test)) == tuple(
        (usage == u).sum() for u in ("Training", "PublicTest", "PrivateTest")
    )
    assert set(s.val.usage) == {"PublicTest"} and set(s.test.usage) == {"PrivateTest"}


def test_notebook_split_is_seeded_and_disjoint(fer_csv):
    ds = read_csv(fer_csv)
    a, b, c = (make_splits(ds, "notebook", seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.train.origin, b.train.origin)
    assert not np.array_equal(a.test.origin, c.test.origin)
    n = (ds.usage == "Training").sum()
    assert len(a.train) + len(a.test) == n and len(a.test) == round(n * 0.2)
    assert not set(a.train.origin) & set(a.test.origin)
    assert a.val is a.test  # the notebook validated on its test part


def test_split_errors(tmp_path, faces):
    images, labels, _ = faces
    ds = read_csv(write_csv(tmp_path / "train.csv", csv_text(images, labels, columns=("emotion", "pixels"))))
    with pytest.raises(DataError, match="official split needs labeled PublicTest, PrivateTest"):
        make_splits(ds, "official")
    with pytest.raises(ValueError, match="unknown split"):
        make_splits(ds, "random")


def test_quality_report_counts_constructed_duplicates_and_blanks(tmp_path):
    images, labels, usage = make_faces(21)
    usage[:] = "Training"
    usage[14:18], usage[18:] = "PublicTest", "PrivateTest"
    images[14] = images[0]  # PublicTest copy of a Training image
    images[18] = images[1]  # PrivateTest copy of a Training image ...
    labels[18] = (labels[1] + 1) % 7  # ... with a conflicting label
    images[19] = images[15]  # PrivateTest copy of a PublicTest image
    images[2] = images[3]  # duplicate within Training
    images[5] = 128  # flat gray face
    path = write_csv(tmp_path / "q.csv", csv_text(images, labels, usage))
    r = quality_report(read_csv(path))
    assert (r.public_in_training, r.private_in_training, r.private_in_public) == (1, 1, 1)
    assert r.within_training == 2 and r.conflicting_groups >= 1 and r.near_blank == 1
    assert r.near_blank_by_usage["Training"] == 1
    groups = duplicate_groups(images)
    assert groups[14] == groups[0] and groups[2] == groups[3] and groups[4] != groups[6]


def test_holdout_keeps_every_duplicate_group_on_one_side():
    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 256, (30, 48, 48), dtype=np.uint8)
    copies = rng.integers(1, 5, 30)  # 1-4 copies of each distinct face, shuffled together
    images = rng.permutation(np.repeat(distinct, copies, axis=0))
    fit, val = holdout_without_shared_images(images, 0.2, seed=3)
    assert sorted([*fit, *val]) == list(range(len(images)))  # a partition, nothing lost
    assert fit.tolist() == sorted(fit) and val.tolist() == sorted(val)
    groups = duplicate_groups(images)
    assert not set(groups[fit]) & set(groups[val])  # no face on both sides
    assert 0.2 * len(images) <= len(val) < 0.2 * len(images) + 4  # at most one group over the fraction
    again = holdout_without_shared_images(images, 0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((fit, val), again, strict=True))


def test_an_unwritable_cache_warns_and_loads_uncached(fer_csv, tmp_path, monkeypatch, capsys):
    from ferkit.data import load_fer2013

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")  # even root cannot create a folder inside it
    monkeypatch.setenv("FERKIT_CACHE", str(blocker / "cache"))
    ds = load_fer2013(fer_csv)
    assert len(ds) == 35 and "going on uncached" in capsys.readouterr().err


def test_a_full_disk_while_caching_leaves_no_partial_file(fer_csv, tmp_path, monkeypatch, capsys):
    import numpy as np

    from ferkit.data import cache, load_fer2013

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    ds = load_fer2013(fer_csv)
    assert len(ds) == 35 and "(No space left on device); going on uncached" in capsys.readouterr().err
    assert not [p for p in cache.cache_dir().iterdir() if p.suffix == ".npz" or ".tmp" in p.name]


def test_a_truncated_cache_file_is_parsed_again(fer_csv):
    from ferkit.data import cache, load_fer2013

    first = load_fer2013(fer_csv)
    (npz,) = [p for p in cache.cache_dir().iterdir() if p.suffix == ".npz"]
    npz.write_bytes(npz.read_bytes()[:100])
    again = load_fer2013(fer_csv)
    assert (again.images == first.images).all()


def test_a_folder_image_rewritten_with_the_same_size_is_not_served_stale(tmp_path):
    import os

    import numpy as np
    from conftest import make_faces, write_folder

    from ferkit.data import load_fer2013

    images, labels, usage = make_faces(14, seed=2)
    root = write_folder(tmp_path / "folder", images, labels, usage, ext=".bmp")  # BMP: same size whatever pixels
    first = load_fer2013(root)
    victim = sorted(root.rglob("*.bmp"))[0]
    size = victim.stat().st_size
    import cv2

    cv2.imwrite(str(victim), 255 - cv2.imread(str(victim), cv2.IMREAD_GRAYSCALE))
    assert victim.stat().st_size == size
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    again = load_fer2013(root)
    assert not np.array_equal(first.images, again.images)
