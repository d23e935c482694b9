"""Quantisation-aware fine-tuning: the fold is exact, weights end on the int8 grid, the registry structure returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferkit.errors import FerkitError
from ferkit.export.onnx import torch_probabilities
from ferkit.models import create_model
from ferkit.training import qat


@pytest.fixture()
def faces() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(32, 48, 48), dtype=np.uint8)


def _trained_looking(name: str) -> torch.nn.Module:
    """A registry model with non-trivial BatchNorm statistics, so that folding has something to fold."""
    torch.manual_seed(0)
    model = create_model(name)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("name", ["vgg_fer", "mobile_fer"])
def test_prepare_then_finalize_keeps_structure_and_snaps_weights(name: str, faces: np.ndarray) -> None:
    model = _trained_looking(name)
    keys = set(model.state_dict())
    qat.prepare(model, faces)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    assert set(qat_ranges := model._qat_ranges) and all(lo <= 0 <= hi for lo, hi in qat_ranges.values())
    qat.finalize(model)
    assert set(model.state_dict()) == keys  # loads into a fresh registry model
    for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        w = conv.weight.detach()
        scale = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
        steps = w / scale.clamp_min(1e-12)
        assert torch.allclose(steps, steps.round(), atol=1e-3)  # every weight an integer number of steps
    fresh = create_model(name)
    fresh.load_state_dict(model.state_dict())


def test_fold_is_exact_before_rounding(faces: np.ndarray) -> None:
    model = _trained_looking("vgg_fer")
    want = torch_probabilities(model, faces)
    qat.prepare(model, faces)
    for h in model._qat_hooks:  # activations exact, weights still rounded: close but not equal
        h.remove()
    for m in [m for m in model.modules() if torch.nn.utils.parametrize.is_parametrized(m, "weight")]:
        torch.nn.utils.parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    got = torch_probabilities(model, faces)
    assert np.abs(got - want).max() < 1e-4


def test_model_without_conv_bn_pair_is_refused(faces: np.ndarray) -> None:
    model = create_model("seed_vgg")  # Keras order: ReLU between conv and BatchNorm, nothing to fold
    with pytest.raises(FerkitError, match="no Conv2d -> BatchNorm2d"):
        qat.prepare(model, faces)
