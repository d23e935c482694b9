"""Committed prediction files: writer and reader, the data-file check, ensembles chosen on PublicTest alone."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import csv_text, make_faces, write_csv

from ferkit.predictions import (
    PredictionFileError,
    cv_select,
    ensemble_from_runs,
    ensemble_logits,
    greedy_select,
    read_run,
    write_run,
)

ROWS = {"Training": 6, "PublicTest": 4, "PrivateTest": 3}


def logits_for(rows: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=(n, 7)).astype(np.float32) for k, n in rows.items()}


def test_write_then_read_keeps_rows_and_info(tmp_path):
    logits = logits_for(ROWS)
    logits["PublicTest_tta"] = logits["PublicTest"] + 0.5
    out = write_run(tmp_path / "r1", logits, {"data_sha256": "ab" * 32, "training_logits": "in-sample"}, ROWS)
    z = np.load(out / "predictions.npz")
    assert {k: z[k].dtype for k in z.files} == dict.fromkeys(logits, np.float16)
    run = read_run(out, "ab" * 32, ROWS)
    for k, v in logits.items():
        np.testing.assert_allclose(run.logits[k], v, atol=2e-3)  # float16, row order kept
    assert run.info["name"] == "r1" and run.info["format"] == 1
    np.testing.assert_allclose(run.split("PublicTest", tta=True), logits["PublicTest_tta"], atol=2e-3)
    np.testing.assert_allclose(run.split("PrivateTest", tta=True), logits["PrivateTest"], atol=2e-3)  # no TTA


def test_reader_refuses_predictions_of_another_data_file(tmp_path):
    out = write_run(tmp_path / "r", logits_for(ROWS), {"data_sha256": "ab" * 32, "training_logits": "x"}, ROWS)
    with pytest.raises(PredictionFileError, match="not on this file"):
        read_run(out, "cd" * 32, ROWS)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("Training"), "no Training logits"),
        (lambda d: d.update(PublicTest=np.zeros((5, 7))), r"PublicTest has shape \(5, 7\)"),
        (lambda d: d.update(Extra=np.zeros((4, 7))), "unknown array 'Extra'"),
        (lambda d: d.update(PrivateTest=np.full((3, 7), np.nan)), "non-finite"),
    ],
)
def test_malformed_predictions_are_refused(tmp_path, change, problem):
    logits = logits_for(ROWS)
    change(logits)
    with pytest.raises(PredictionFileError, match=problem):
        write_run(tmp_path / "r", logits, {"data_sha256": "ab", "training_logits": "x"}, ROWS)


def test_missing_files_and_missing_info(tmp_path):
    with pytest.raises(PredictionFileError, match="not a run folder"):
        read_run(tmp_path)
    with pytest.raises(PredictionFileError, match="lacks 'training_logits'"):
        write_run(tmp_path / "r", logits_for(ROWS), {"data_sha256": "ab"}, ROWS)


def _truncate_npz(folder):
    data = (folder / "predictions.npz").read_bytes()
    (folder / "predictions.npz").write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda d: (d / "predictions.npz").write_bytes(b"x"), r"predictions.npz is not an \.npz \(zip\) archive"),
        (
            lambda d: (d / "predictions.npz").write_bytes(b"\x80\x04K\x01."),
            r"predictions.npz is not an \.npz",
        ),  # a pickle: never loaded
        (_truncate_npz, "unreadable prediction files"),
        (lambda d: (d / "run.json").write_text("{not json"), "unreadable prediction files"),
        (lambda d: (d / "run.json").write_text("[]"), "run.json holds list, not a JSON object"),
    ],
)
def test_damaged_run_folders_are_refused_with_the_reason(tmp_path, damage, problem):
    out = write_run(tmp_path / "r", logits_for(ROWS), {"data_sha256": "ab" * 32, "training_logits": "x"}, ROWS)
    damage(out)
    with pytest.raises(PredictionFileError, match=f"^{re.escape(str(out))}: {problem}"):  # said once, not wrapped
        read_run(out, "ab" * 32, ROWS)


def test_a_file_given_as_a_run_is_refused(tmp_path):
    out = write_run(tmp_path / "r", logits_for(ROWS), {"data_sha256": "ab" * 32, "training_logits": "x"}, ROWS)
    assert read_run(out / "predictions.npz", "ab" * 32, ROWS).name == "r"  # the folder's own file is accepted
    with pytest.raises(PredictionFileError, match="not a run folder"):
        read_run(out / "run.json", "ab" * 32, ROWS)


def test_greedy_selection_adds_what_helps_on_publictest():
    labels = np.array([0, 1, 2, 3, 4, 5])
    good = np.eye(7)[labels] * 5
    half = good.copy()
    half[3:] = np.eye(7)[(labels[3:] + 1) % 7] * 5  # right on the first half only
    bad = np.eye(7)[(labels + 2) % 7] * 5
    sel = greedy_select({"good": good, "half": half, "bad": bad}, labels)
    assert sel.members == ["good"] and sel.public_accuracy == 1.0  # adding anything else cannot beat 100%
    sel = greedy_select({"half": half, "bad": bad}, labels)
    assert sel.members[0] == "half" and "bad" not in sel.weights


def test_cv_selection_keeps_one_run_that_is_always_right():
    labels = np.arange(40) % 7
    perfect = np.eye(7)[labels] * 5
    noise = {f"noise{i}": np.random.default_rng(i).normal(size=(40, 7)) for i in range(3)}
    sel = cv_select({"perfect": perfect, **noise}, labels, repeats=3)
    assert sel.rule == "top1" and sel.members == ["perfect"] and sel.public_accuracy == 1.0
    assert set(sel.cv) == {"top1", "top2", "top3", "top4", "greedy"} and sel.cv["top1"] == 1.0


def test_cv_selection_refuses_too_few_images():
    with pytest.raises(ValueError, match="at least 4 PublicTest images, got 3"):
        cv_select({"a": np.zeros((3, 7))}, np.array([0, 1, 2]))


def test_cv_selection_averages_many_independent_runs_over_greedy_fitting():
    # Twelve runs, each right on a random 55% of the images: their mean beats any one of them on unseen images,
    # while greedy selection fits its picks to the half it sees. The rule must be a top-k mean with k > 1, members
    # the k best on all of PublicTest with equal weights, and the whole choice reproducible.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 400)
    runs = {}
    for i in range(12):
        right = rng.random(400) < 0.55
        guess = np.where(right, labels, (labels + rng.integers(1, 7, 400)) % 7)
        runs[f"r{i:02d}"] = np.eye(7)[guess] * 2 + rng.normal(scale=0.5, size=(400, 7))
    sel = cv_select(runs, labels, repeats=5)
    k = int(sel.rule.removeprefix("top"))
    assert k > 1 and sel.cv[sel.rule] == max(sel.cv.values()) and sel.cv[sel.rule] > sel.cv["top1"]
    singles = {n: float((z.argmax(1) == labels).mean()) for n, z in runs.items()}
    assert set(sel.members) == set(sorted(singles, key=lambda n: (-singles[n], n))[:k])
    assert set(sel.weights.values()) == {1} and sel.public_accuracy > max(singles.values())
    again = cv_select(runs, labels, repeats=5)
    assert again.members == sel.members and again.cv == sel.cv


def test_ensemble_logits_is_the_mean_probability():
    a, b = np.log(np.array([[0.9, 0.1] + [1e-9] * 5])), np.log(np.array([[0.1, 0.9] + [1e-9] * 5]))
    p = np.exp(ensemble_logits([a, b], [3, 1]))
    np.testing.assert_allclose(p[0, :2], [0.7, 0.3], atol=1e-6)


@pytest.fixture
def runs_on_small_data(tmp_path):
    """A small FER2013 file and three runs' prediction files made on it."""
    from ferkit.data import load_fer2013, make_splits
    from ferkit.data.source import data_identity
    from ferkit.predictions import split_rows

    images, labels, usage = make_faces(35, seed=4)
    fer = write_csv(tmp_path / "fer2013.csv", csv_text(images, labels, usage))
    splits = make_splits(load_fer2013(fer), "official")
    rows, sha = split_rows(splits), data_identity(fer)["sha256"]
    truth = {"Training": splits.train.labels, "PublicTest": splits.val.labels, "PrivateTest": splits.test.labels}
    paths = []
    for i, skill in enumerate((4.0, 2.0, 0.0)):
        logits = logits_for(rows, seed=i)
        for k, y in truth.items():
            logits[k] = logits[k] + skill * np.eye(7)[y]
        paths.append(write_run(tmp_path / f"run{i}", logits, {"data_sha256": sha, "training_logits": "x"}, rows))
    return fer, paths


@pytest.mark.parametrize("select", ["greedy", "cv"])
def test_ensemble_choice_never_reads_privatetest(runs_on_small_data, select):
    fer, paths = runs_on_small_data
    first = ensemble_from_runs(paths, str(fer), select=select)
    # Scramble every run's PrivateTest logits: the members chosen must not move (only the PrivateTest figure may).
    for p in paths:
        z = dict(np.load(p / "predictions.npz"))
        z["PrivateTest"] = np.random.default_rng(9).normal(size=z["PrivateTest"].shape).astype(np.float16)
        np.savez_compressed(p / "predictions.npz", **z)
    second = ensemble_from_runs(paths, str(fer), select=select)
    assert first["members"] == second["members"] and first["PublicTest"] == second["PublicTest"]
    assert first["select"] == select and (first["cv"] is None) == (select == "greedy")
    assert first["PrivateTest"]["unseen"]["n"] <= first["PrivateTest"]["n"]


def test_ensemble_cli(runs_on_small_data, capsys):
    from ferkit.cli import main

    fer, paths = runs_on_small_data
    assert main(["ensemble", *map(str, paths), "--data", str(fer), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert "run0" in r["members"] and set(r) >= {"PublicTest", "PrivateTest", "single_public"}
    assert main(["ensemble", *map(str, paths), "--data", str(fer)]) == 0
    out = capsys.readouterr().out
    assert "chosen on PublicTest" in out and "unseen" in out and "rule chosen" not in out
    assert main(["ensemble", *map(str, paths), "--data", str(fer), "--select", "cv"]) == 0
    out = capsys.readouterr().out
    assert "held-out PublicTest accuracy" in out and "rule chosen: " in out


def test_ensemble_refuses_an_unknown_selection(runs_on_small_data):
    fer, paths = runs_on_small_data
    with pytest.raises(ValueError, match="unknown ensemble selection 'best'; choose from greedy, cv"):
        ensemble_from_runs(paths, str(fer), select="best")


def test_record_predictions_of_a_trained_model(trained, tmp_path):
    from ferkit.cli import main

    ckpt, _, _ = trained
    out = tmp_path / "results" / "runs" / "tiny"
    assert main(["predictions", str(ckpt), "--out", str(out), "--commit", "abc123"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["model"] == "seed_vgg_tiny" and info["git_commit"] == "abc123" and len(info["data_sha256"]) == 64
    assert info["public_accuracy"] > 0.9 and info["tta"] == "flip" and "in-sample" in info["training_logits"]
    rows = {k: len(v) for k, v in run_splits(ckpt).items()}
    run = read_run(out, info["data_sha256"], rows)
    assert set(run.logits) == {"Training", "PublicTest", "PrivateTest", "PublicTest_tta", "PrivateTest_tta"}


def run_splits(ckpt) -> dict[str, np.ndarray]:
    """The official splits' labels of the data a checkpoint was trained on."""
    from ferkit.data import load_fer2013, make_splits
    from ferkit.models.checkpoint import load_model

    splits = make_splits(load_fer2013(load_model(ckpt)[1]["config"]["data"]), "official")
    return {"Training": splits.train.labels, "PublicTest": splits.val.labels, "PrivateTest": splits.test.labels}


def test_record_predictions_of_an_onnx_model_without_torch(tiny_onnx, tmp_path):
    """A bundled model's checkpoint is gone: its prediction file comes from the ONNX file, torch blocked."""
    from conftest import run_blocked

    images, labels, usage = make_faces(35, seed=6)
    fer = write_csv(tmp_path / "fer2013.csv", csv_text(images, labels, usage))
    out = tmp_path / "runs" / "default"
    r = run_blocked(
        f"""
        from ferkit.cli import main
        assert main(["predictions", {str(tiny_onnx)!r}, "--out", {str(out)!r}, "--data", {str(fer)!r}]) == 0
        assert "torch" not in sys.modules
        """
    )
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads((out / "run.json").read_text())
    assert info["source_model"] == "tiny.onnx" and info["tta"] == "flip" and len(info["data_sha256"]) == 64
    z = np.load(out / "predictions.npz")
    assert z["Training"].shape == ((usage == "Training").sum(), 7) and "PrivateTest_tta" in z.files
