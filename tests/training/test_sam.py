"""Sharpness-aware minimisation (SAM): the ascent's size, the way back, BatchNorm untouched, the CLI, refusals."""

import json

import pytest
import torch

from ferkit.cli import main
from ferkit.errors import ConfigError
from ferkit.training.config import Phase, TrainConfig, load_config

TINY = ["--limit", "24", "--batch-size", "8", "--threads", "1"]


def _module(rho: float = 0.05, fraction: float = 0.5):
    from types import SimpleNamespace

    from ferkit.models import create_model
    from ferkit.training.modules import FERModule

    torch.manual_seed(0)
    module = FERModule(create_model("fast_fer_t"), TrainConfig(sam_rho=rho, sam_fraction=fraction), Phase())
    module._trainer = SimpleNamespace(current_epoch=0, global_rank=0)
    module.log = lambda *a, **k: None  # no trainer to log to
    return module.train()


def _weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.model.state_dict().items()}


def test_row_targets_fold_mixup_into_each_image_target():
    from ferkit.training.modules import _row_targets

    y, partner = torch.tensor([0, 3]), torch.tensor([1, 0])
    target = _row_targets(y, (partner, 0.75), None)  # (2, 7)
    assert target[0, 0] == pytest.approx(0.75) and target[0, 3] == pytest.approx(0.25)
    assert target[1, 3] == pytest.approx(0.75) and target[1, 0] == pytest.approx(0.25)
    torch.testing.assert_close(_row_targets(y, None, None), torch.nn.functional.one_hot(y, 7).float())


@pytest.mark.parametrize("fraction", [0.25, 1.0])
def test_ascent_moves_the_weights_rho_and_the_hook_moves_them_back(fraction):
    module = _module(rho=0.05, fraction=fraction)
    before = _weights(module)
    x = torch.randn(8, 1, 40, 40)
    module._sharpness_ascent(x, torch.arange(8) % 7, None, None)
    params = {n: p for n, p in module.model.named_parameters() if p.requires_grad}
    step = torch.cat([(params[n].detach() - before[n]).flatten() for n in params])
    assert torch.linalg.vector_norm(step).item() == pytest.approx(0.05, rel=1e-3)
    frozen = [n for n, p in module.model.named_parameters() if not p.requires_grad]  # the whitening layer
    assert all(torch.equal(module.model.state_dict()[n], before[n]) for n in frozen)
    buffers = [n for n in before if "running" in n or "num_batches" in n]
    assert buffers and all(torch.equal(module.model.state_dict()[n], before[n]) for n in buffers)
    module.on_before_optimizer_step(None)
    after = _weights(module)
    assert all(torch.equal(after[n], before[n]) for n in before)  # exactly w again


def test_rho_zero_leaves_the_weights_alone():
    module = _module(rho=0.0)
    before = _weights(module)
    module._sharpness_ascent(
        torch.randn(4, 1, 40, 40), torch.zeros(4, dtype=torch.long), None, torch.full((4, 7), 1 / 7)
    )
    module.on_before_optimizer_step(None)
    assert all(torch.equal(v, before[k]) for k, v in _weights(module).items())


def test_the_step_gradient_is_taken_at_the_moved_weights():
    """A full training step: the gradient the optimizer sees differs from plain training's on the same batch."""
    grads = {}
    for rho in (0.0, 0.5):
        module = _module(rho=rho, fraction=1.0)
        x, y = torch.randn(8, 1, 48, 48), torch.arange(8) % 7
        loss = module.training_step((x, y), 0)
        loss.backward()
        module.on_before_optimizer_step(None)
        grads[rho] = torch.cat([p.grad.flatten() for p in module.model.parameters() if p.grad is not None])
    assert not torch.allclose(grads[0.0], grads[0.5])


@pytest.mark.parametrize(("key", "value"), [("sam_rho", "-0.1"), ("sam_fraction", "0"), ("sam_fraction", "1.5")])
def test_out_of_range_settings_are_refused_by_name(key, value):
    with pytest.raises(ConfigError, match=key):
        load_config(overrides=[f"{key}={value}"])


def test_sam_is_refused_for_distillation(fer_csv, tmp_path, capsys):
    args = ["train", "--config", "fast", "--data", str(fer_csv), "--run-dir", str(tmp_path / "r"), *TINY]
    assert main([*args, "--set", "sam_rho=0.05", "--set", "teacher_logits=[results/runs/x]"]) != 0
    assert "sam_rho applies to label training" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_sam_trains_through_the_cli_with_self_distill_and_mixup(fer_csv, tmp_path, monkeypatch):
    from ferkit.training.modules import FERModule

    back, restore = [], FERModule.on_before_optimizer_step

    def counted(self, optimizer):  # Lightning must call the way back before every optimizer step
        back.append(len(self._sam_kept))
        restore(self, optimizer)

    monkeypatch.setattr(FERModule, "on_before_optimizer_step", counted)
    run = tmp_path / "run"
    extra = [
        "--epochs",
        "2",
        "--set",
        "sam_rho=0.05",
        "--set",
        "self_distill=0.8",
        "--set",
        "phases.0.augment.mixup=0.2",
    ]
    args = ["train", "--config", "fast", "--data", str(fer_csv), "--run-dir", str(run), *TINY, *extra]
    assert main([*args, "--set", "model=fast_fer_t", "--set", "precision=32-true"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["sam_rho"] == 0.05 and summary["phases"][0]["epochs_run"] == 2
    assert (run / "model.pt").is_file()
    assert len(back) == 6 and all(n > 0 for n in back)  # 2 epochs of 3 batches, each moved and moved back
