"""The inference rewrite of FastFer (ferkit.models.fold): the same outputs from fewer, NCHWc-friendly nodes."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import make_faces

from ferkit.models import create_model
from ferkit.models.fold import FOLDING_KEY, fold_fast_fer
from ferkit.models.from_onnx import check_rebuild, model_from_onnx


def _model(name: str, negative_scales: bool, crop: int = 40) -> torch.nn.Module:
    """`name` with random BatchNorm statistics; with negative_scales, some post-pool BN scales below zero."""
    torch.manual_seed(0)
    model = create_model(name, crop=crop).eval()
    model.init_whitening(torch.randn(32, 1, crop, crop))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(-0.5 if negative_scales else 0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("negative_scales", [False, True])
@pytest.mark.parametrize("name,crop", [("fast_fer_u", 44), ("fast_fer_s", 40), ("fast_fer_ur", 40)])
def test_folded_model_computes_the_same_logits(name, crop, negative_scales):
    from ferkit.export.onnx import wrap_for_export

    model = _model(name, negative_scales, crop)
    folded = fold_fast_fer(model, channel_block=16)
    faces = torch.from_numpy(make_faces(8, seed=4)[0]).float().unsqueeze(1)  # (8, 1, 48, 48) gray levels
    with torch.no_grad():
        want, got = wrap_for_export(model)(faces), folded(faces)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    info = folded.description
    assert info["whiten_channels"] == [18, 32]  # 2 * 3 * 3 whitening channels, padded to the 16-float block
    # a BN folds only when every scale is positive; the mixed-sign groups keep theirs
    assert info["post_pool_bn_folded"] == [not negative_scales] * 3
    kept = sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert kept == (3 if negative_scales else 0)
    # rewrite 4: in a ReLU model each folded group's ReLU sits straight after its conv, before the pool
    kinds = [type(m).__name__ for m in folded.features]
    relu_first = model.features[0].__class__ is torch.nn.ReLU and not negative_scales
    assert (kinds[1:4] == ["Conv2d", "ReLU", "MaxPool2d"]) == relu_first


@pytest.mark.parametrize("name", ["seed_vgg_tiny", "fast_fer_res"])
def test_other_architectures_are_left_alone(name):
    """The rewrites assume plain ConvGroups; a residual FastFer exports as trained (its parity and rebuild are
    tests/models/test_from_onnx.py's)."""
    assert fold_fast_fer(create_model(name), channel_block=16) is None


@pytest.mark.parametrize(
    "name,negative_scales,fp16",
    [
        ("fast_fer_u", False, False),
        ("fast_fer_u", True, False),
        ("fast_fer_u", False, True),
        ("fast_fer_ur", True, False),
    ],
)
def test_folded_onnx_has_fewer_nodes_and_rebuilds_exactly(tmp_path, name, negative_scales, fp16):
    """export_onnx folds a FastFer: no normalisation nodes, no post-pool BatchNorm, a 16-multiple first width, the
    folding in its metadata; model_from_onnx undoes it (float16-stored weights too, as the bundled files have), so
    phone files can still be made from the ONNX file."""
    import onnx

    from ferkit.export.onnx import contract, export_onnx, wrap_for_export

    model = _model(name, negative_scales, crop=44)
    path = tmp_path / "u.onnx"
    meta = {"ferkit_contract": json.dumps(contract(model)), "model_name": name}
    meta["recipe"] = json.dumps({"model_args": {"crop": 44}})
    export_onnx(model, path, meta, make_faces(8, seed=1)[0], fp16_weights=fp16)
    proto = onnx.load(str(path))
    ops = Counter(n.op_type for n in proto.graph.node)
    assert ops["BatchNormalization"] == (3 if negative_scales else 0)
    relu = name.endswith("r")  # GELU is exported as x * (1 + erf(x / sqrt 2)) / 2 at opset 17
    assert (ops["Relu"], ops["Erf"]) == ((7, 0) if relu else (0, 7))
    assert ops["Sub"] == 0 and [n.op_type for n in proto.graph.node if "faces" in n.input] == ["Slice"]
    first = next(i for i in proto.graph.initializer if tuple(i.dims) == (32, 1, 3, 3))
    assert first is not None
    folding = json.loads({p.key: p.value for p in proto.metadata_props}[FOLDING_KEY])
    assert folding["whiten_channels"] == [18, 32]
    rebuilt, _ = model_from_onnx(path)
    assert check_rebuild(rebuilt, path, make_faces(16, seed=2)[0]) < 1e-5
    tol = 1e-3 if fp16 else 1e-5  # float16 storage rounds the weights (relative ~5e-4)
    with torch.no_grad():  # the rebuilt model is the trainable one again, with the original parameters
        np.testing.assert_allclose(rebuilt.whiten.weight.numpy(), model.whiten.weight.numpy(), atol=1e-5)
        faces = torch.from_numpy(make_faces(4, seed=5)[0]).float().unsqueeze(1)
        want = torch.softmax(wrap_for_export(model)(faces), 1)
        torch.testing.assert_close(torch.softmax(wrap_for_export(rebuilt)(faces), 1), want, atol=tol, rtol=0)


def test_int8_qoperator_file_quantises_every_conv_and_rebuilds_within_a_quantisation_step(tmp_path):
    """The full-integer ONNX file of a ReLU FastFer (export.onnx.quantize_onnx_qoperator) runs every conv as a
    QLinearConv, and model_from_onnx dequantizes it back to the
    trainable model: every weight within half a quantisation step of the original."""
    import onnx
    from onnx import numpy_helper

    from ferkit.export.onnx import contract, export_onnx, quantize_onnx_qoperator, wrap_for_export

    model = _model("fast_fer_ur", negative_scales=False, crop=40)
    fp32, int8 = tmp_path / "ur.onnx", tmp_path / "ur.int8.onnx"
    meta = {"ferkit_contract": json.dumps(contract(model)), "model_name": "fast_fer_ur"}
    export_onnx(model, fp32, meta, make_faces(8, seed=1)[0])
    quantize_onnx_qoperator(fp32, int8, make_faces(32, seed=3)[0])
    proto = onnx.load(str(int8))
    ops = Counter(n.op_type for n in proto.graph.node)
    assert ops["QLinearConv"] == 7 and ops["Conv"] == 0
    # every ReLU fused into its QLinearConv's range, the pools on uint8: one float pass, before the global max-pool
    assert ops["Relu"] == 0 and ops["MaxPool"] == 3 and ops["DequantizeLinear"] == 1 and ops["QuantizeLinear"] == 1
    proto.metadata_props.extend(onnx.load(str(fp32)).metadata_props)  # export_onnx_int8 carries the metadata over
    onnx.save(proto, str(int8))
    rebuilt, _ = model_from_onnx(int8)
    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    conv = [n for n in proto.graph.node if n.op_type == "QLinearConv"][3]  # group 2's first conv, in graph order
    step = init[conv.input[4]].reshape(-1, 1, 1, 1)  # (out, 1, 1, 1) per-channel weight scales, zero point 0
    folded = fold_fast_fer(model, channel_block=16)
    want = folded.features[6].weight.detach().numpy()  # the same conv in float, its post-pool BN folded in
    assert np.all(np.abs(init[conv.input[3]] * step - want) <= step / 2 + 1e-7)
    rebuilt_w = (
        rebuilt.features[2][0].weight.detach().numpy()
        * rebuilt.features[2][2].weight.detach().numpy()[:, None, None, None]
    )  # the rebuilt conv times its identity BN's scale (1): the dequantized folded weight
    np.testing.assert_allclose(rebuilt_w, init[conv.input[3]] * step, atol=1e-6)
    with torch.no_grad():  # the rebuilt model computes what the folded float model computes, up to those steps
        faces = torch.from_numpy(make_faces(8, seed=5)[0]).float().unsqueeze(1)
        got_p, want_p = torch.softmax(wrap_for_export(rebuilt)(faces), 1), torch.softmax(folded(faces), 1)
    assert float((got_p - want_p).abs().max()) < 0.05
