"""Progressive self-knowledge distillation (PS-KD): the schedule, what is recorded under mixup, resume, the CLI."""

import json

import pytest
import torch

from ferkit.cli import main
from ferkit.errors import ConfigError
from ferkit.training.config import Phase, TrainConfig, load_config

TINY = ["--limit", "24", "--batch-size", "8", "--threads", "1"]


def _module(n: int = 8, epochs: int = 5, alpha: float = 0.8):
    from types import SimpleNamespace

    from ferkit.models import create_model
    from ferkit.training.modules import SelfDistillModule

    labels = torch.arange(n) % 7
    config, phase = TrainConfig(self_distill=alpha), Phase(epochs=epochs)
    module = SelfDistillModule(create_model("mobile_fer"), config, phase, labels)
    module._trainer = SimpleNamespace(current_epoch=0, global_rank=0)
    module.log = lambda *a, **k: None  # no trainer to log to
    return module, labels


def test_weight_rises_from_zero_to_self_distill_over_the_phase():
    module, _ = _module(epochs=5, alpha=0.8)
    weights = []
    for epoch in range(5):
        module._trainer.current_epoch = epoch
        weights.append(module.alpha())
    assert weights == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])


def test_unrecorded_rows_are_their_labels_and_a_step_records_its_predictions():
    module, labels = _module()
    assert torch.equal(module.past, torch.nn.functional.one_hot(labels, 7).float())
    x = torch.randint(0, 256, (4, 1, 48, 48), dtype=torch.uint8).float()
    rows = torch.tensor([5, 1, 6, 2])
    loss = module.training_step((x, labels[rows], rows), 0)  # no mixup in the default phase
    assert torch.isfinite(loss)
    assert torch.allclose(module.past[rows].sum(1), torch.ones(4))
    assert not torch.equal(module.past[rows], torch.nn.functional.one_hot(labels[rows], 7).float())
    untouched = torch.tensor([0, 3, 4, 7])
    assert torch.equal(module.past[untouched], torch.nn.functional.one_hot(labels[untouched], 7).float())


@pytest.mark.parametrize(
    ("lam", "recorded"),
    [(0.9, [10, 11, 12, 13]), (0.1, [12, 13, 10, 11]), (0.5, None)],
    ids=["own-image-dominates", "partner-dominates", "even-blend-skipped"],
)
def test_mixup_records_each_blend_under_the_image_that_dominates_it(lam, recorded):
    module, _ = _module(n=16)
    before = module.past.clone()
    logits = torch.eye(7)[:4] * 5  # blend k predicts class k
    rows, partner = torch.tensor([10, 11, 12, 13]), torch.tensor([2, 3, 0, 1])
    module._record(logits, rows, (partner, lam))
    if recorded is None:
        assert torch.equal(module.past, before)
        return
    probs = torch.softmax(logits, 1)
    for k, row in enumerate(recorded):
        torch.testing.assert_close(module.past[row], probs[k])


def test_past_predictions_travel_with_the_checkpoint():
    module, _ = _module()
    module.past[3] = torch.full((7,), 1 / 7)
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    fresh, _ = _module()
    fresh.on_load_checkpoint(checkpoint)
    assert torch.equal(fresh.past, module.past)


def test_weight_outside_zero_to_one_is_refused_by_name():
    with pytest.raises(ConfigError, match="self_distill"):
        load_config(overrides=["self_distill=1.0"])


def test_self_distill_does_not_combine_with_other_soft_targets(fer_csv, tmp_path, capsys):
    args = ["train", "--config", "fast", "--data", str(fer_csv), "--run-dir", str(tmp_path / "r"), *TINY]
    assert main([*args, "--set", "self_distill=0.5", "--set", "ferplus_weight=0.3"]) != 0
    assert "does not combine with ferplus_weight" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before any data is read or folder made


def test_self_distill_trains_through_the_cli_with_mixup_and_keeps_its_state(fer_csv, tmp_path):
    run = tmp_path / "run"
    extra = ["--epochs", "2", "--set", "self_distill=0.8", "--set", "phases.0.augment.mixup=0.2"]
    args = ["train", "--config", "fast", "--data", str(fer_csv), "--run-dir", str(run), *TINY, *extra]
    assert main([*args, "--set", "model_args.crop=44", "--set", "precision=32-true"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["self_distill"] == 0.8 and summary["phases"][0]["epochs_run"] == 2
    state = torch.load(run / "0-main" / "checkpoints" / "resume.ckpt", weights_only=False)
    n = min(24, fer_csv.read_text().count(",Training"))  # the Training images --limit keeps
    past = state["self_distill_past"]  # (n, 7)
    assert past.shape == (n, 7) and torch.allclose(past.sum(1), torch.ones(n))
    assert "self_distill_past" not in state["state_dict"]  # the model file holds weights only
