"""k-fold teachers: the duplicate-aware fold assignment, fold training through the real CLI, and the out-of-fold
prediction file (each Training row predicted by the one fold model that did not train on it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_faces

from ferkit.cli import main
from ferkit.data import kfold_assignment

TINY = ["--epochs", "1", "--batch-size", "8", "--threads", "1"]


def test_folds_are_balanced_seeded_and_keep_duplicates_together():
    images, _, _ = make_faces(60, seed=5)
    images[40:46] = images[3]  # a duplicate group of seven
    a = kfold_assignment(images, 4, seed=1)
    assert sorted(set(a.tolist())) == [0, 1, 2, 3] and np.bincount(a).max() - np.bincount(a).min() <= 7
    assert len(set(a[[3, *range(40, 46)]].tolist())) == 1  # the copies share one fold
    np.testing.assert_array_equal(a, kfold_assignment(images, 4, seed=1))
    assert not np.array_equal(a, kfold_assignment(images, 4, seed=2))
    with pytest.raises(ValueError, match="at least 2 folds"):
        kfold_assignment(images, 1)


def train_fold(fer_csv, run, fold: int, folds: int = 2) -> None:
    args = ["train", "--config", "fast", "--data", str(fer_csv), "--run-dir", str(run), *TINY]
    assert main([*args, "--set", f"folds={folds}", "--set", f"fold={fold}", "--set", "model=fast_fer_u"]) == 0


def test_out_of_fold_prediction_file_through_cli(fer_csv, tmp_path):
    from ferkit.data import load_fer2013, make_splits
    from ferkit.models.checkpoint import load_model
    from ferkit.models.predict import predict_logits
    from ferkit.predictions import ensemble_logits, read_run
    from ferkit.training.config import TrainConfig
    from ferkit.training.loop import _outside_fold

    splits = make_splits(load_fer2013(fer_csv), "official")
    fold_of = kfold_assignment(splits.train.images, 2)
    for f in (0, 1):  # a fold model trains on the other fold's images only
        kept, _ = _outside_fold(TrainConfig(folds=2, fold=f), splits.train, None)
        np.testing.assert_array_equal(kept.images, splits.train.images[fold_of != f])
    runs = [tmp_path / f"f{f}" for f in (0, 1)]
    for f, run in enumerate(runs):
        train_fold(fer_csv, run, f)
    out = tmp_path / "results" / "oof"
    assert main(["predictions", *(str(r / "model.pt") for r in runs), "--out", str(out), "--data", str(fer_csv)]) == 0
    got = read_run(
        out, rows={"Training": len(splits.train), "PublicTest": len(splits.val), "PrivateTest": len(splits.test)}
    )
    models = [load_model(r / "model.pt")[0] for r in runs]
    for f, m in enumerate(models):
        want = predict_logits(m, splits.train.images[fold_of == f])
        np.testing.assert_allclose(got.logits["Training"][fold_of == f], want, atol=2e-2, rtol=1e-2)
    public = ensemble_logits([predict_logits(m, splits.val.images) for m in models])
    np.testing.assert_allclose(got.logits["PublicTest"], public, atol=2e-2, rtol=1e-2)
    info = json.loads((out / "run.json").read_text())
    assert info["training_logits"].startswith("out-of-fold: 2 folds") and info["folds"] == 2
    single = tmp_path / "results" / "single"
    assert main(["predictions", str(runs[0] / "model.pt"), "--out", str(single), "--data", str(fer_csv)]) == 0
    assert "fold 0 of 2" in json.loads((single / "run.json").read_text())["training_logits"]


def test_out_of_fold_needs_every_fold_once(fer_csv, tmp_path, capsys):
    run = tmp_path / "f0"
    train_fold(fer_csv, run, 0)
    model = str(run / "model.pt")
    assert main(["predictions", model, model, "--out", str(tmp_path / "oof"), "--data", str(fer_csv)]) == 2
    assert "folds 0..k-1 of one partition" in capsys.readouterr().err
    assert not (tmp_path / "oof").exists()


@pytest.mark.parametrize(
    ("accelerator", "machine", "named"),
    [
        ("gpu", {"cpu": "Xeon", "cores": 16}, True),  # trained on a GPU before the loop named it
        ("gpu", {"cpu": "Xeon", "gpu": "NVIDIA H200"}, False),  # named by the loop: kept as it is
        ("auto", {"cpu": "Xeon", "cores": 2}, False),
        ("gpu", None, False),  # unknown: record_run fills in this machine
    ],
)
def test_run_json_says_when_a_run_trained_on_a_gpu(accelerator, machine, named):
    from ferkit.models.predict import _trained_on

    out = _trained_on({"accelerator": accelerator}, machine)
    if machine is None:
        assert out is None
    elif named:
        assert out["cpu"] == machine["cpu"] and "CUDA GPU" in out["gpu"]
    else:
        assert out == machine
