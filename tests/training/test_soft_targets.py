"""Soft targets through the real CLI on tiny data: distillation from committed logits, FER+ votes mixed in;
the speedrun network's whitening and the linear schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import csv_text, make_faces, write_csv

from ferkit.cli import main

TINY = ["--limit", "24", "--epochs", "1", "--batch-size", "8", "--threads", "1"]


def teacher_run(fer_csv, out, seed: int = 0):
    """A committed-style run on fer_csv whose Training logits point at the true label."""
    from ferkit.data import load_fer2013, make_splits
    from ferkit.data.source import data_identity
    from ferkit.predictions import split_rows, write_run

    splits = make_splits(load_fer2013(fer_csv), "official")
    rng = np.random.default_rng(seed)
    parts = {"Training": splits.train, "PublicTest": splits.val, "PrivateTest": splits.test}
    logits = {k: rng.normal(size=(len(p), 7)) + 3 * np.eye(7)[p.labels] for k, p in parts.items()}
    info = {"data_sha256": data_identity(fer_csv)["sha256"], "training_logits": "synthetic"}
    return write_run(out, logits, info, split_rows(splits)), logits["Training"]


def test_distill_from_teacher_logits_through_cli(fer_csv, tmp_path):
    a, _ = teacher_run(fer_csv, tmp_path / "results" / "A", seed=0)
    b, _ = teacher_run(fer_csv, tmp_path / "results" / "B", seed=1)
    run = tmp_path / "student"
    args = ["distill", "--teacher-logits", str(a), str(b), "--config", "fast", "--run-dir", str(run)]
    assert main([*args, "--data", str(fer_csv), *TINY, "--set", "model=fast_fer_s"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["teacher_logits"] == [str(a), str(b)] and summary["phases"][0]["epochs_run"] == 1


def test_soft_targets_are_the_ensembled_teacher_logits(fer_csv, tmp_path):
    from ferkit.data import load_fer2013, make_splits
    from ferkit.predictions import ensemble_logits
    from ferkit.training.config import TrainConfig
    from ferkit.training.loop import soft_targets

    a, la = teacher_run(fer_csv, tmp_path / "A", seed=0)
    b, lb = teacher_run(fer_csv, tmp_path / "B", seed=1)
    splits = make_splits(load_fer2013(fer_csv), "official")
    got = soft_targets(TrainConfig(teacher_logits=[str(a), str(b)], data=str(fer_csv)), splits)
    want = ensemble_logits([la.astype(np.float16).astype(np.float32), lb.astype(np.float16).astype(np.float32)])
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_teacher_logits_of_another_data_file_are_refused(fer_csv, tmp_path):
    images, labels, usage = make_faces(35, seed=99)
    other = write_csv(tmp_path / "other.csv", csv_text(images, labels, usage))
    a, _ = teacher_run(other, tmp_path / "A")
    args = ["distill", "--teacher-logits", str(a), "--config", "fast", "--run-dir", str(tmp_path / "s")]
    assert main([*args, "--data", str(fer_csv), *TINY]) == 2  # a PredictionFileError, not a traceback


def neutral_votes(fer_csv, out):
    """A FER+ vote file for fer_csv in which every image got ten neutral votes."""
    from ferkit.data import FERPLUS_COLUMNS, load_fer2013

    rows = ["Usage,Image name," + ",".join(FERPLUS_COLUMNS)]
    for i, u in enumerate(load_fer2013(fer_csv).usage):
        rows.append(f"{u},fer{i:07d}.png," + ",".join(["10"] + ["0"] * 9))
    out.write_text("\n".join(rows) + "\n")
    return out


def test_ferplus_votes_mixed_into_training_targets_through_cli(fer_csv, tmp_path):
    plus = neutral_votes(fer_csv, tmp_path / "fer2013new.csv")
    run = tmp_path / "run"
    args = ["train", "--config", "fast", "--data", str(fer_csv), "--run-dir", str(run), *TINY]
    assert main([*args, "--set", "ferplus_weight=0.3", "--set", f"ferplus={plus}"]) == 0
    assert json.loads((run / "summary.json").read_text())["config"]["ferplus_weight"] == 0.3


def test_teacher_logits_and_ferplus_votes_combine(fer_csv, tmp_path):
    """Both: the teachers' logits, then the label mixed with FER+ votes (the hard term's target); through the CLI."""
    from ferkit.data import join_ferplus, load_fer2013, make_splits, mixed_targets, read_ferplus
    from ferkit.training.config import TrainConfig
    from ferkit.training.loop import soft_targets

    a, _ = teacher_run(fer_csv, tmp_path / "A")
    plus = neutral_votes(fer_csv, tmp_path / "fer2013new.csv")
    splits = make_splits(join_ferplus(load_fer2013(fer_csv), read_ferplus(plus)), "official")
    cfg = TrainConfig(teacher_logits=[str(a)], data=str(fer_csv), ferplus_weight=0.4, ferplus=str(plus))
    got = soft_targets(cfg, splits)
    t = splits.train
    assert got.shape == (len(t), 14)
    np.testing.assert_allclose(
        got[:, :7], soft_targets(TrainConfig(teacher_logits=[str(a)], data=str(fer_csv)), splits)
    )
    np.testing.assert_allclose(got[:, 7:], mixed_targets(t.labels, t.votes, t.votes_usable, 0.4))
    assert not np.allclose(got[:, 7:], np.eye(7)[t.labels])  # the neutral votes moved the hard target
    run = tmp_path / "student"
    args = ["distill", "--teacher-logits", str(a), "--config", "fast", "--run-dir", str(run), "--data", str(fer_csv)]
    assert main([*args, *TINY, "--set", "ferplus_weight=0.4", "--set", f"ferplus={plus}"]) == 0
    config = json.loads((run / "summary.json").read_text())["config"]
    assert config["ferplus_weight"] == 0.4 and config["teacher_logits"] == [str(a)]


def test_soft_target_cross_entropy_and_logit_kl():
    from ferkit.models import create_model
    from ferkit.training.config import Phase, TrainConfig
    from ferkit.training.modules import FERModule, soft_kl

    m = FERModule(create_model("fast_fer_s"), TrainConfig(label_smoothing=0.0), Phase())
    logits, y = torch.randn(4, 7), torch.tensor([0, 1, 2, 3])
    onehot = torch.nn.functional.one_hot(y, 7).float()
    torch.testing.assert_close(m._cross_entropy(logits, y, None, onehot), m._cross_entropy(logits, y, None))
    p = torch.softmax(logits / 2.0, 1)
    assert float(soft_kl(logits, p, 2.0)) == pytest.approx(0.0, abs=1e-5)  # the student equals its teacher


def test_whitening_layer_whitens_patches():
    from ferkit.models import create_model

    model = create_model("fast_fer_s")
    x = torch.randn(64, 1, 40, 40).cumsum(3)  # correlated neighbouring pixels
    model.init_whitening(x)
    out = torch.nn.functional.conv2d(x, model.whiten.weight[:9])  # (64, 9, 38, 38) without bias
    cov = torch.cov(out.permute(1, 0, 2, 3).reshape(9, -1))
    torch.testing.assert_close(cov, torch.eye(9), atol=0.05, rtol=0.05)
    assert not model.whiten.weight.requires_grad


def test_linear_schedule_warms_up_then_decays_to_zero():
    from types import SimpleNamespace

    from ferkit.models import create_model
    from ferkit.training.config import Phase, TrainConfig
    from ferkit.training.modules import FERModule

    cfg = TrainConfig(optimizer="sgd", lr=0.2, scheduler="linear", warmup_epochs=1)
    module = FERModule(create_model("fast_fer_s"), cfg, Phase(epochs=10))
    module._trainer = SimpleNamespace(estimated_stepping_batches=100, current_epoch=0, global_rank=0)
    conf = module.configure_optimizers()
    sched, opt = conf["lr_scheduler"]["scheduler"], conf["optimizer"]
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[9] == pytest.approx(0.2) and lrs[0] == pytest.approx(0.02)
    assert lrs[55] == pytest.approx(0.2 * (1 - 45 / 90)) and lrs[-1] < 0.01


def test_ferplus_protocol_trains_and_evaluates_eight_classes_through_cli(fer_csv, tmp_path):
    """labels=ferplus: an 8-class head whose contract names FER+'s classes, trained on the vote shares, and
    `ferkit evaluate` scoring it on the majority-rule labels (read from the file's labels, not from a flag)."""
    from ferkit.data import FERPLUS_COLUMNS, FERPLUS_EMOTIONS, load_fer2013
    from ferkit.models.checkpoint import load_model

    rows = ["Usage,Image name," + ",".join(FERPLUS_COLUMNS)]
    for i, u in enumerate(load_fer2013(fer_csv).usage):  # 8 votes for emotion i % 8, 2 for the next one
        v = [0] * 10
        v[i % 8], v[(i + 1) % 8] = 8, 2
        rows.append(f"{u},fer{i:07d}.png," + ",".join(map(str, v)))
    plus = tmp_path / "fer2013new.csv"
    plus.write_text("\n".join(rows) + "\n")
    run, out = tmp_path / "run", tmp_path / "eval"
    args = ["train", "--config", "fast", "--data", str(fer_csv), "--run-dir", str(run), *TINY]
    assert main([*args, "--set", "labels=ferplus", "--set", "ferplus_weight=1", "--set", f"ferplus={plus}"]) == 0
    model, ckpt = load_model(run / "model.pt")
    assert tuple(model.pretrained_cfg["labels"]) == FERPLUS_EMOTIONS and model.head.out_features == 8
    assert ckpt["config"]["labels"] == "ferplus"
    assert main(["evaluate", str(run / "model.pt"), "--data", str(fer_csv), "--split", "test", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["per_class"]) == list(FERPLUS_EMOTIONS) and "FER+ 8 classes" in report["usage"]
    assert report["n"] == (load_fer2013(fer_csv).usage == "PrivateTest").sum() and report["unseen"]["n"] >= 0
    pred = ["predictions", str(run / "model.pt"), "--out", str(tmp_path / "p"), "--data", str(fer_csv)]
    assert main(pred) == 2 and not (tmp_path / "p").exists()  # prediction files hold FER2013's seven classes


def test_ferplus_protocol_refuses_seven_class_teachers(fer_csv, tmp_path):
    a, _ = teacher_run(fer_csv, tmp_path / "A")
    plus = neutral_votes(fer_csv, tmp_path / "fer2013new.csv")
    args = ["distill", "--teacher-logits", str(a), "--config", "fast", "--run-dir", str(tmp_path / "s")]
    assert main([*args, "--data", str(fer_csv), *TINY, "--set", "labels=ferplus", "--set", f"ferplus={plus}"]) == 2
