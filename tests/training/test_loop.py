"""The training engine through the real CLI on tiny synthetic data: smoke, resume, DDP, hard examples."""

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ferkit.cli import main
from ferkit.models.checkpoint import load_model
from ferkit.training import loop as train_mod
from ferkit.training import qat
from ferkit.training.loop import mine_hard_examples

TINY = ["--limit", "24", "--epochs", "1", "--batch-size", "8", "--threads", "1"]


class PixelModel(torch.nn.Module):
    """Predicts class k when the top-left pixel of the (unnormalised) image equals k."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.pretrained_cfg = {"scale": 1.0, "mean": (0.0,), "std": (1.0,), "input_size": (1, 48, 48)}

    def forward(self, x):
        k = x[:, 0, 0, 0].round().long()
        return torch.nn.functional.one_hot(k, 7).float() + 0 * self.dummy


def test_hard_examples_are_exactly_the_misclassified_training_images():
    images = np.zeros((20, 48, 48), np.uint8)
    images[:, 0, 0] = np.arange(20) % 7
    labels = (np.arange(20) % 7).astype(np.int64)
    wrong = [2, 5, 11, 17]
    labels[wrong] = (labels[wrong] + 1) % 7
    found = mine_hard_examples(PixelModel(), images, labels, "32-true")
    assert found.tolist() == wrong


def test_hard_phase_validates_on_faces_it_does_not_fit():
    from ferkit.data import FERDataset, Splits
    from ferkit.training.config import Phase, TrainConfig

    n = 40
    images = np.zeros((n, 48, 48), np.uint8)
    images[:, 1, 1] = np.arange(n) % 10  # 10 distinct faces, 4 copies each
    images[:, 0, 0] = np.arange(n) % 7  # what PixelModel predicts
    labels = ((np.arange(n) % 7 + 1) % 7).astype(np.int64)  # every face is misclassified
    train = FERDataset(images, labels, np.full(n, "Training"), np.arange(n))
    data = train_mod.phase_data(
        Phase(name="hard", data="hard"), Splits("official", train, train, train), PixelModel(), TrainConfig(), "32-true"
    )
    fit, val = data.train[0], data.val[0]
    assert data.note == {"hard_examples": n, "hard_train": len(fit), "hard_val": len(val)}
    assert len(fit) + len(val) == n and len(val) == 8  # two whole groups of four
    assert not {f.tobytes() for f in fit} & {v.tobytes() for v in val}


def test_smoke_train_and_evaluate_through_cli(fer_csv, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--config", "seed", "--data", str(fer_csv), "--run-dir", str(run), *TINY]
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert [p["phase"] for p in summary["phases"]] == ["base", "hard", "augment"]
    assert summary["parameters"]["trainable"] == 5_098_951
    assert (run / "config.yaml").exists() and (run / "0-base" / "metrics.csv").exists()
    model, ckpt = load_model(run / "model.pt")
    assert ckpt["config"]["batch_size"] == 8 and model.pretrained_cfg["labels"][0] == "angry"
    out = tmp_path / "eval"
    assert main(["evaluate", str(run / "model.pt"), "--data", str(fer_csv), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["usage"] == "PublicTest" and 0 <= report["accuracy"] <= 1
    assert (out / "confusion.png").exists() and (out / "training_curves.png").exists()
    assert "| angry |" in (out / "report.md").read_text()


class Killed(RuntimeError):
    pass


def test_resume_after_kill_gives_the_same_result(fer_csv, tmp_path, monkeypatch):
    import lightning as L

    base = [
        "train",
        "--config",
        "seed",
        "--data",
        str(fer_csv),
        "--limit",
        "24",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--set",
        "precision=32-true",
        "--set",
        "phases=[{name: base, epochs: 3}]",
    ]
    assert main([*base, "--run-dir", str(tmp_path / "whole")]) == 0

    class KillInThirdEpoch(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.current_epoch == 2 and batch_idx == 1:  # killed mid-epoch: epochs 0 and 1 are complete
                raise Killed("simulated kill")

    class RecordEpochs(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            started.append(trainer.current_epoch)

    def with_callback(callback):
        def make(*a, **k):
            trainer = original(*a, **k)
            trainer.callbacks.append(callback)
            return trainer

        return make

    original, started = train_mod._trainer, []
    monkeypatch.setattr(train_mod, "_trainer", with_callback(KillInThirdEpoch()))
    with pytest.raises(Killed):
        main([*base, "--run-dir", str(tmp_path / "killed")])
    ckpts = tmp_path / "killed" / "0-base" / "checkpoints"
    assert train_mod.resume_checkpoint(ckpts) == ckpts / train_mod.RESUME_CKPT
    assert not (tmp_path / "killed" / "model.pt").exists()
    spent = torch.load(ckpts / train_mod.RESUME_CKPT, weights_only=False)["callbacks"]["PhaseClock"]["seconds"]
    assert spent > 0
    monkeypatch.setattr(train_mod, "_trainer", with_callback(RecordEpochs()))
    assert main([*base, "--run-dir", str(tmp_path / "killed")]) == 0
    assert started == [2]  # resumes where it was killed: no finished epoch is trained twice
    done = json.loads((tmp_path / "killed" / "0-base" / "done.json").read_text())
    assert done["seconds"] > spent  # the phase's time counts the killed process's epochs too
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "killed" / "model.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_ddp_with_two_cpu_processes(fer_csv, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "ferkit.cli",
        "train",
        "--config",
        "seed",
        "--data",
        str(fer_csv),
        "--run-dir",
        str(run),
        "--limit",
        "24",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "--set",
        "phases=[{name: base, epochs: 1}]",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "world_size: 2" in r.stderr or "MEMBER: 2/2" in r.stderr or "distributed_backend=gloo" in r.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["phases"][0]["epochs_run"] == 1


@pytest.mark.parametrize("recipe", ["best", "mobile"])
def test_recipes_smoke(recipe, fer_csv, tmp_path):
    run = tmp_path / "run"
    args = [
        "train",
        "--config",
        recipe,
        "--data",
        str(fer_csv),
        "--run-dir",
        str(run),
        *TINY,
        "--set",
        "model=mobile_fer",
        "--set",
        "warmup_epochs=0.5",
    ]
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["scheduler"] == "cosine" and summary["phases"][0]["epochs_run"] == 1


def test_distill_and_ensemble_through_cli(fer_csv, tmp_path, capsys):
    teacher = tmp_path / "teacher"
    common = ["--data", str(fer_csv), *TINY, "--set", "model=mobile_fer"]
    assert main(["train", "--config", "mobile", "--run-dir", str(teacher), *common]) == 0
    student = tmp_path / "student"
    assert (
        main(
            [
                "distill",
                "--teacher",
                str(teacher / "model.pt"),
                "--config",
                "mobile",
                "--run-dir",
                str(student),
                *common,
                "--set",
                "ema_decay=0.9",
                "--set",
                "phases.0.augment.mixup=0.2",
            ]
        )
        == 0
    )
    cfg = json.loads((student / "summary.json").read_text())["config"]
    assert cfg["teachers"] == [str(teacher / "model.pt")] and cfg["ema_decay"] == 0.9
    assert cfg["phases"][0]["augment"]["mixup"] == 0.2
    out = tmp_path / "ens"
    models = [str(teacher / "model.pt"), str(student / "model.pt")]
    assert main(["evaluate", *models, "--data", str(fer_csv), "--tta", "tencrop", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["models"] == models and report["tta"] == "tencrop" and report["usage"] == "PublicTest"


def _module(**cfg):
    from types import SimpleNamespace

    from ferkit.models import create_model
    from ferkit.training.config import Phase, TrainConfig
    from ferkit.training.modules import FERModule

    phase = Phase(epochs=10)
    module = FERModule(create_model("mobile_fer"), TrainConfig(**cfg), phase)
    module._trainer = SimpleNamespace(estimated_stepping_batches=100, current_epoch=0, global_rank=0)  # 10 x 10 steps
    return module


def test_mixup_loss_weighs_both_labels_by_lam():
    module = _module(label_smoothing=0.1)
    logits, y = torch.randn(4, 7), torch.tensor([0, 1, 2, 3])
    partner, lam = torch.tensor([2, 3, 0, 1]), 0.7
    ce = torch.nn.functional.cross_entropy
    expected = lam * ce(logits, y, label_smoothing=0.1) + (1 - lam) * ce(logits, y[partner], label_smoothing=0.1)
    torch.testing.assert_close(module._cross_entropy(logits, y, (partner, lam)), expected)
    torch.testing.assert_close(module._cross_entropy(logits, y, None), ce(logits, y, label_smoothing=0.1))


def test_training_step_mixes_when_the_phase_asks():
    module = _module()
    module.phase.augment.mixup = 0.4
    module.log = lambda *a, **k: None  # no trainer to log to
    x = torch.randint(0, 256, (8, 1, 48, 48), dtype=torch.uint8)
    mixed, mix = module._augmented(x.float(), 0)
    assert mixed.shape == (8, 1, 44, 44) and mix is not None and 0 < mix[1] < 1
    assert torch.isfinite(module.training_step((x.float(), torch.arange(8) % 7), 0))


def test_no_weight_decay_on_norms_and_biases():
    module = _module(optimizer="sgd", weight_decay=5e-4)
    opt = module.configure_optimizers()["optimizer"]
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 5e-4 and plain["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(module.model.parameters()))


def test_cosine_schedule_warms_up_then_decays_to_zero_per_step():
    conf = _module(optimizer="sgd", lr=0.1, scheduler="cosine", warmup_epochs=2).configure_optimizers()
    sched, opt = conf["lr_scheduler"]["scheduler"], conf["optimizer"]
    assert conf["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1 / 20) and lrs[19] == pytest.approx(0.1)  # 20 warm-up steps
    assert all(a >= b for a, b in itertools.pairwise(lrs[19:]))  # then never rises
    assert lrs[-1] < 1e-3


def test_plateau_is_the_seed_default_and_unknown_schedulers_are_refused():
    conf = _module().configure_optimizers()
    assert isinstance(conf["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(ValueError, match="unknown scheduler"):
        _module(scheduler="step").configure_optimizers()


@pytest.mark.parametrize(("arch", "recipe"), [("mobile_fer", "qat"), ("fast_fer_tr", "qat_student")])
def test_qat_fine_tune_from_init_through_cli(fer_csv, tmp_path, arch, recipe):
    common = ["--data", str(fer_csv), *TINY, "--set", f"model={arch}"]
    start = tmp_path / "start"
    assert main(["train", "--config", "mobile", "--run-dir", str(start), *common]) == 0
    init = f"init={start / 'model.pt'}"
    run = tmp_path / "qat"
    assert main(["train", "--config", recipe, "--run-dir", str(run), *common, "--set", init]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["qat"] is True and 0 <= summary["val_after_qat"]["accuracy"] <= 1
    model, _ = load_model(run / "model.pt")  # the registry's structure, weights on the int8 grid
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    steps = conv.weight / (conv.weight.abs().amax(dim=(1, 2, 3), keepdim=True) / qat.WEIGHT_QMAX)
    assert torch.allclose(steps, steps.round(), atol=1e-3)
    with pytest.raises(ValueError, match=f"init .* is a {arch}"):
        main(
            [
                "train",
                "--config",
                "qat",
                "--run-dir",
                str(tmp_path / "bad"),
                "--data",
                str(fer_csv),
                *TINY,
                "--set",
                init,
            ]
        )


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            "fpu avx2 avx512f avx512bw avx512_vnni",
            "32-true",
        ),  # AVX-512 without bf16: oneDNN would emulate it, 3.5x slower
        ("fpu avx2 avx512f avx512_bf16", "bf16-mixed"),
        ("fpu avx2 avx512f amx_bf16 amx_tile", "bf16-mixed"),
    ],
)
def test_auto_precision_takes_bf16_only_where_the_cpu_has_it_natively(flags, expected, tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n")
    read_flags = train_mod.cpu_has_native_bf16
    monkeypatch.setattr(train_mod, "cpu_has_native_bf16", lambda: read_flags(cpuinfo))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train_mod.resolve_precision(train_mod.TrainConfig(model="vgg_fer")) == expected
    assert train_mod.resolve_precision(train_mod.TrainConfig(model="vgg_fer", precision="bf16-mixed")) == "bf16-mixed"


def test_no_cpuinfo_means_fp32(tmp_path):
    assert train_mod.cpu_has_native_bf16(tmp_path / "missing") is False
