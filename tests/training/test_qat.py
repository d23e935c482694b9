"""Quantisation-aware fine-tuning: the fold is exact, weights end on the int8 grid, the registry structure returns."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("name", ["vgg_fer", "mobile_fer", "fast_fer_tr"])
def test_prepare_then_finalize_keeps_structure_and_snaps_weights(name: str, faces: np.ndarray) -> None:
    model = _trained_looking(name)
    keys = set(model.state_dict())
    qat.prepare(model, faces)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    ranges = model._qat_ranges  # conv name -> (input range, output range)
    assert set(ranges) and all(lo <= 0 <= hi for pair in ranges.values() for lo, hi in pair)
    qat.finalize(model)
    assert set(model.state_dict()) == keys  # loads into a fresh registry model
    for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        w = conv.weight.detach()
        scale = w.abs().amax(dim=(1, 2, 3), keepdim=True) / qat.WEIGHT_QMAX
        steps = w / scale.clamp_min(1e-12)
        assert torch.allclose(steps, steps.round(), atol=1e-3)  # every weight an integer number of steps
    fresh = create_model(name)
    fresh.load_state_dict(model.state_dict())


@pytest.mark.parametrize("name", ["vgg_fer", "fast_fer_tr"])
def test_fold_is_exact_before_rounding(name: str, faces: np.ndarray) -> None:
    model = _trained_looking(name)
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


def test_fast_fer_folds_through_the_pool_only_where_exact(faces: np.ndarray) -> None:
    """conv -> max-pool -> BN folds when every BN scale is positive; a negative one keeps its BatchNorm, as the
    export's fold (ferkit.models.fold) does."""
    model = _trained_looking("fast_fer_tr")
    pairs = qat.fold_pairs(model)
    assert sum(pooled for *_, pooled in pairs) == 3 and len(pairs) == 6  # three groups: one pooled, one direct
    first_pooled_bn = next(bn for _, bn, pooled in pairs if pooled)
    with torch.no_grad():
        model.get_submodule(first_pooled_bn).weight[0] = -1.0
    qat.prepare(model, faces)
    assert isinstance(model.get_submodule(first_pooled_bn), torch.nn.BatchNorm2d)
    assert len(model._qat_folds) == 5


@pytest.mark.parametrize("name,gray", [("fast_fer_tr", "whiten"), ("fast_fer_res", None), ("vgg_fer", None)])
def test_qat_sees_the_export_the_fold_writes(name: str, gray: str | None) -> None:
    """QAT simulates the folded first conv (gray levels in, padded channels out) only where the export folds: a
    residual fast_fer_res exports as trained, like any other architecture."""
    got, zeros = qat._export_view(create_model(name))
    assert got == gray and bool(zeros) == (gray is not None)


def _smooth_faces(n: int) -> np.ndarray:
    """(n, 48, 48) uint8 faces with image-like (smooth) structure: random 6x6 gray levels, bilinearly upsampled."""
    small = torch.from_numpy(np.random.default_rng(0).integers(0, 256, size=(n, 1, 6, 6)).astype(np.float32))
    big = torch.nn.functional.interpolate(small, size=(48, 48), mode="bilinear")[:, 0]
    return big.clamp(0, 255).round().to(torch.uint8).numpy()


def test_simulation_matches_onnx_runtime_int8_file(tmp_path) -> None:
    """The simulated forward is the full-integer ONNX file (folded, channels padded, calibrated by ORT's histogram):
    prepared on the faces the file is calibrated on, its logits sit closer to ONNX Runtime's int8 logits than the
    float model's do (measured: 0.58 of the float model's mean distance; without the gray levels' own range, the
    padded zeros and the bias fold, the simulation was farther than float)."""
    from ferkit.export.onnx import contract, export_onnx, quantize_onnx_qoperator
    from ferkit.models.predict import predict_logits
    from ferkit.models.preprocess import to_input
    from ferkit.preprocess import faces_to_input

    ort = pytest.importorskip("onnxruntime")
    faces = _smooth_faces(64)
    model = _trained_looking("fast_fer_tr")
    model.init_whitening(to_input(torch.from_numpy(faces)[:, None], model.pretrained_cfg, channels_last=False))
    model.scale = 30.0  # logits of a trained model's size (a random head's are ~0.01: all noise)
    float_logits = predict_logits(model, faces)
    export_onnx(model, tmp_path / "f.onnx", {"ferkit_contract": json.dumps(contract(model))}, faces[:8])
    quantize_onnx_qoperator(tmp_path / "f.onnx", tmp_path / "q.onnx", faces)
    session = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    int8 = session.run(None, {"faces": faces_to_input(faces)})[0]
    qat.prepare(model, faces)
    simulated = predict_logits(model, faces)
    assert np.abs(float_logits - int8).mean() > 0.01  # the rounding is visible at this scale
    assert np.abs(simulated - int8).mean() < 0.75 * np.abs(float_logits - int8).mean()
