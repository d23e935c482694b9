"""A shipped ONNX model rebuilt in torch (no checkpoint), so it exports to phone formats without training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_faces

from ferkit.models.from_onnx import OnnxRebuildError, check_rebuild, model_from_onnx


def exported(tmp_path, name: str):
    """`name` with random BatchNorm statistics (so folding matters), exported with ferkit's metadata."""
    from ferkit.export.onnx import contract, export_onnx
    from ferkit.models import create_model

    torch.manual_seed(0)
    model = create_model(name).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    path = tmp_path / f"{name}.onnx"
    meta = {"ferkit_contract": json.dumps(contract(model)), "model_name": name, "recipe": json.dumps({})}
    export_onnx(model, path, meta, make_faces(8, seed=1)[0])
    return path


@pytest.mark.parametrize("name", ["seed_vgg_tiny", "fast_fer_s", "fast_fer_res", "mobile_fer"])
def test_rebuilt_model_equals_the_onnx_file(tmp_path, name):
    path = exported(tmp_path, name)
    model, ckpt = model_from_onnx(path)
    assert ckpt["model"] == name
    assert check_rebuild(model, path, make_faces(16, seed=2)[0]) < 1e-5


def test_a_graph_that_does_not_fit_the_named_model_is_refused(tmp_path):
    import onnx

    path = exported(tmp_path, "seed_vgg_tiny")
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == "model_name":
            p.value = "mobile_fer"
    onnx.save(proto, str(path))
    with pytest.raises(OnnxRebuildError, match="convolutions in the graph"):
        model_from_onnx(path)


def test_export_the_bundled_default_without_training(trained, tmp_path, monkeypatch):
    """`ferkit export default --format onnx`: the shipped model, rebuilt and re-exported with its own calibration."""
    from ferkit.bundled import bundled_model_path
    from ferkit.cli import main
    from ferkit.runtime import Recognizer

    out = tmp_path / "d.onnx"
    data = trained[0].parent / "fer2013.csv"
    assert main(["export", "default", "--out", str(out), "--data", str(data)]) == 0
    a, b = Recognizer.default(), Recognizer.from_file(out)
    faces = make_faces(8, seed=3)[0]
    np.testing.assert_allclose(a.probabilities(faces), b.probabilities(faces), atol=1e-5)
    assert b.temperature == pytest.approx(a.temperature) and str(bundled_model_path()) != str(out)
