"""FER+ votes: the reader, the row-by-row join, vote -> target helpers and the FER+ image-folder layout."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import csv_text, make_faces, write_csv

from ferkit.data import (
    FERPLUS_COLUMNS,
    FERPLUS_EMOTIONS,
    fer2013_distribution,
    ferplus_facts,
    ferplus_labelled,
    ferplus_majority,
    ferplus_targets,
    join_ferplus,
    load_fer2013,
    load_with_ferplus,
    locate_ferplus,
    mixed_targets,
    read_ferplus,
)
from ferkit.data.ferplus import UNVERIFIED_ROWS, ferplus_shares, ferplus_training_label, plurality_fer2013
from ferkit.data.quality import unseen_mask
from ferkit.errors import DataError, DataNotFoundError

HEADER = "Usage,Image name," + ",".join(FERPLUS_COLUMNS)


def votes_text(usage, votes, names=None) -> str:
    rows = [HEADER]
    for i, (u, v) in enumerate(zip(usage, votes, strict=True)):
        name = f"fer{i:07d}.png" if names is None else names[i]
        rows.append(f"{u},{name}," + ",".join(str(int(x)) for x in v))
    return "\n".join(rows) + "\n"


def vote_rows(n: int, seed: int = 0) -> np.ndarray:
    """(n, 10) votes: 10 votes spread mostly over the 8 emotions."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, 10, 10) % 9, minlength=10) for _ in range(n)]).astype(np.uint8)


@pytest.fixture
def pair(tmp_path):
    images, labels, usage = make_faces(21, seed=3)
    fer = write_csv(tmp_path / "fer2013.csv", csv_text(images, labels, usage))
    votes = vote_rows(21)
    names = [f"fer{i:07d}.png" for i in range(21)]
    names[4] = ""  # not a face
    plus = write_csv(tmp_path / "fer2013new.csv", votes_text(usage, votes, names))
    return fer, plus, votes, usage


def test_reader_and_join_row_by_row(pair):
    fer, plus, votes, usage = pair
    fp = read_ferplus(plus)
    np.testing.assert_array_equal(fp.votes, votes)
    assert list(fp.usage) == list(usage) and fp.names[4] == "" and "sha256" in fp.source
    ds = join_ferplus(load_fer2013(fer), fp)
    np.testing.assert_array_equal(ds.votes, votes)
    assert not ds.votes_usable[4] and ds.votes_usable.sum() == 20  # the not-a-face row alone is unusable
    sub = ds.subset("Training")  # votes travel with every selection
    assert len(sub.votes) == len(sub) == sub.votes_usable.size


def test_unverified_rows_count_as_unknown(tmp_path):
    n = max(UNVERIFIED_ROWS) + 1
    usage = ["Training"] * n
    fp = read_ferplus(write_csv(tmp_path / "v.csv", votes_text(usage, np.full((n, 10), 1))))
    assert not fp.usable()[list(UNVERIFIED_ROWS)].any() and fp.usable().sum() == n - len(UNVERIFIED_ROWS)


@pytest.mark.parametrize("what", ["fewer rows", "other usage"])
def test_join_of_files_that_do_not_belong_together_names_both(pair, tmp_path, what):
    fer, _, votes, usage = pair
    if what == "fewer rows":
        text = votes_text(usage[:-1], votes[:-1])
    else:
        text = votes_text(["PrivateTest" if u == "PublicTest" else u for u in usage], votes)
    other = read_ferplus(write_csv(tmp_path / "other.csv", text))
    with pytest.raises(
        DataError, match=r"do not belong to .*fer2013\.csv.*(21 rows against 20|Usage differs first at row)"
    ) as e:
        join_ferplus(load_fer2013(fer), other)
    assert "other.csv" in str(e.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Usage,name,a\nTraining,x,1\n", "not a FER\\+ votes file"),
        (HEADER + "\nTraining,fer0.png,1,2,3\n", "line 2: expected Usage"),
        (HEADER + "\nTraining,fer0.png,1,x,0,0,0,0,0,0,0,0\n", "line 2: vote counts must be integers"),
        (HEADER + "\nValidation,fer0.png,1,0,0,0,0,0,0,0,0,0\n", "line 2: expected Usage"),
        (HEADER + "\n", "no rows"),
    ],
)
def test_malformed_votes_file_names_file_and_line(tmp_path, text, problem):
    with pytest.raises(DataError, match=problem):
        read_ferplus(write_csv(tmp_path / "bad.csv", text))


def test_locate_order_and_missing(tmp_path, monkeypatch, pair):
    _, plus, _, _ = pair
    assert locate_ferplus(plus) == plus and locate_ferplus(plus.parent) == plus
    monkeypatch.setenv("FERKIT_FERPLUS", str(plus))
    assert locate_ferplus() == plus
    with pytest.raises(DataNotFoundError, match="microsoft/FERPlus"):
        locate_ferplus(tmp_path / "nowhere")
    fer, _, votes, _ = pair
    assert load_with_ferplus(fer, plus).votes.shape == votes.shape


def test_fer2013_distribution_maps_columns_and_drops_the_rest():
    #            neu hap sur sad ang dis fea con unk NF
    v = np.array(
        [
            [4, 0, 0, 1, 3, 2, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 5, 3, 2],  # contempt, unknown, not-a-face only: nothing left
            [0, 6, 0, 0, 0, 0, 2, 2, 0, 0],  # contempt dropped, the rest renormalised
        ],
        np.uint8,
    )
    dist, usable = fer2013_distribution(v)
    # FER2013 order: angry disgust fear happy sad surprise neutral
    np.testing.assert_allclose(dist[0], [0.3, 0.2, 0, 0, 0.1, 0, 0.4])
    np.testing.assert_allclose(dist[2], [0, 0, 0.25, 0.75, 0, 0, 0])
    assert usable.tolist() == [True, False, True] and not dist[1].any()


def test_ferplus_majority_rule():
    #            neu hap sur sad ang dis fea con unk NF
    v = np.array(
        [
            [6, 1, 1, 1, 1, 0, 0, 0, 0, 0],  # 6 of 6 after single votes go: neutral
            [4, 4, 0, 0, 0, 0, 0, 0, 2, 0],  # no strict majority: dropped
            [1, 1, 1, 1, 0, 0, 0, 0, 6, 0],  # unknown majority: dropped
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face: dropped
            [0, 0, 0, 0, 0, 0, 0, 5, 4, 1],  # contempt 5 of 9 (the 1 is dropped): contempt, FER+ class 7
            [3, 2, 0, 0, 0, 0, 0, 0, 0, 0],  # 3 of 5: strict majority
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # no votes
        ],
        np.uint8,
    )
    assert ferplus_majority(v).tolist() == [0, -1, -1, -1, 7, 0, -1]


def test_plurality_in_fer2013_classes():
    v = np.array([[4, 0, 0, 1, 3, 2, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 9, 1, 0], [0, 0, 5, 0, 0, 0, 5, 0, 0, 0]])
    assert plurality_fer2013(v).tolist() == [6, -1, 5]  # neutral; contempt has no class; ties to the first column


def test_mixed_targets():
    labels = np.array([0, 3])
    v = np.array([[0, 0, 0, 0, 10, 0, 0, 0, 0, 0], [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]], np.uint8)
    t = mixed_targets(labels, v, np.array([True, False]), 0.25)
    np.testing.assert_allclose(t[0], np.eye(7)[0])  # anger votes agree with the angry label
    np.testing.assert_allclose(t[1], np.eye(7)[3])  # unusable votes: the plain label
    t = mixed_targets(np.array([3]), v[1:], np.array([True]), 0.25)
    np.testing.assert_allclose(t[0], 0.75 * np.eye(7)[3] + 0.25 * np.eye(7)[6])
    np.testing.assert_allclose(t.sum(1), 1.0)
    with pytest.raises(ValueError, match="mixing weight"):
        mixed_targets(labels, v, np.array([True, True]), 1.5)


def test_facts_on_a_small_table(pair):
    fer, plus, votes, _ = pair
    ds = load_with_ferplus(fer, plus)
    f = ferplus_facts(ds)
    assert sum(f.usable_by_usage.values()) == 20
    train = (ds.usage == "Training") & ds.votes_usable
    assert sum(f.majority_counts["Training"].values()) + f.majority_dropped["Training"] == train.sum()
    plural = plurality_fer2013(votes)
    assert f.plurality_agreement == pytest.approx((plural == ds.labels)[ds.votes_usable].mean())


def test_ferplus_image_folder_layout(tmp_path):
    import cv2

    images, _, _ = make_faces(9, seed=5)
    votes = vote_rows(9, seed=1)
    root = tmp_path / "ferplus"
    parts = {"FER2013Train": range(0, 5), "FER2013Valid": range(5, 7), "FER2013Test": range(7, 9)}
    for folder, rows in parts.items():
        (root / folder).mkdir(parents=True)
        lines = []
        for i in rows:
            cv2.imwrite(str(root / folder / f"fer{i:07d}.png"), images[i])
            lines.append(f'fer{i:07d}.png,"(0, 0, 48, 48)",' + ",".join(map(str, votes[i])))
        if folder != "FER2013Test":  # the test part takes its votes from fer2013new.csv beside the folders
            (root / folder / "label.csv").write_text("\n".join(lines) + "\n")
    usage = ["Training"] * 5 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    write_csv(root / "fer2013new.csv", votes_text(usage, votes))
    ds = load_fer2013(root)  # found by auto-detection
    assert ds.layout == "ferplus-folder" and len(ds) == 9
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.votes, votes)
    assert list(ds.usage) == usage and ds.origin.tolist() == list(range(9)) and (ds.labels == -1).all()
    again = load_fer2013(root)  # from the cache, votes included
    np.testing.assert_array_equal(again.votes, votes)


def test_unseen_mask():
    a, _, _ = make_faces(6, seed=1)
    test = np.stack([a[0], a[3], a[5][::-1]])
    assert unseen_mask(test, a).tolist() == [False, False, True]


def test_data_info_prints_the_ferplus_facts(pair, capsys):
    from ferkit.cli import main

    fer, plus, _, _ = pair
    assert main(["data", "info", "--data", str(fer), "--ferplus", str(plus)]) == 0
    out = capsys.readouterr().out
    assert "FER+ votes: usable rows Training" in out and "FER+ majority rule" in out
    assert main(["data", "info", "--data", str(fer), "--ferplus", str(fer.parent / "missing.csv")]) == 0
    assert "FER+ votes: not found" in capsys.readouterr().out


def test_exported_metadata_carries_no_local_path(trained, tmp_path):
    import json

    from ferkit.cli import main
    from ferkit.runtime import Recognizer

    ckpt, _, _ = trained
    out = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    meta = Recognizer.from_file(out).metadata
    assert str(tmp_path.parent) not in json.dumps(meta) and "/" not in json.loads(meta["training_data"])["file"]
    assert len(json.loads(meta["training_data"])["sha256"]) == 64


def test_ferplus_training_labels_keep_what_the_majority_rule_drops():
    #            neu hap sur sad ang dis fea con unk NF
    v = np.array(
        [
            [4, 4, 0, 0, 0, 0, 0, 0, 2, 0],  # no strict majority, but the top column is an emotion: neutral (first)
            [1, 1, 1, 1, 0, 0, 0, 0, 6, 0],  # unknown on top: dropped
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face: dropped
            [0, 3, 0, 0, 0, 0, 0, 4, 2, 1],  # contempt on top: 7
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],  # every vote is a single one: nothing left, dropped
        ],
        np.uint8,
    )
    assert ferplus_training_label(v).tolist() == [0, -1, -1, 7, -1]
    shares = ferplus_shares(v)
    np.testing.assert_allclose(shares[0], [0.5, 0.5, 0, 0, 0, 0, 0, 0])  # unknown and NF leave the shares
    np.testing.assert_allclose(shares[3], [0, 3 / 7, 0, 0, 0, 0, 0, 4 / 7])
    assert not shares[4].any()
    t = ferplus_targets(np.array([0, 7]), v[[0, 3]], 0.5)
    np.testing.assert_allclose(t[1], 0.5 * np.eye(8)[7] + 0.5 * shares[3])
    np.testing.assert_allclose(t.sum(1), 1.0)
    with pytest.raises(ValueError, match="mixing weight"):
        ferplus_targets(np.array([0]), v[:1], -0.1)


def test_ferplus_labelled_follows_the_protocol_per_usage(tmp_path):
    """Training rows by their top emotion, PublicTest and PrivateTest by the majority rule; the dropped rows leave,
    the classes are FER+'s eight and travel with every selection."""
    usage = ["Training"] * 3 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    tie = [4, 4, 0, 0, 0, 0, 0, 0, 2, 0]
    votes = np.array(
        [tie, [0] * 7 + [10, 0, 0], [0] * 9 + [10], tie, [0] * 7 + [10, 0, 0], [0, 0, 9, 0, 0, 0, 0, 0, 1, 0], tie]
    )
    images, labels, _ = make_faces(len(usage), seed=3)
    fer = write_csv(tmp_path / "fer.csv", csv_text(images, labels, usage))
    plus = write_csv(tmp_path / "fer2013new.csv", votes_text(usage, votes))
    ds = ferplus_labelled(load_with_ferplus(fer, plus))
    assert ds.usage.tolist() == ["Training", "Training", "PublicTest", "PrivateTest"]
    assert ds.labels.tolist() == [0, 7, 7, 2] and ds.classes == FERPLUS_EMOTIONS
    assert ds.subset("PublicTest").classes == FERPLUS_EMOTIONS and len(ds.class_counts()) == 8
    with pytest.raises(DataError, match="FER\\+ votes"):
        ferplus_labelled(load_fer2013(fer))
