"""Core ML: the .mlpackage is a classifier over the same float input as every format, with named calibrated
probabilities. Core ML runs only on Apple platforms: what is checked here is the saved spec and the converted
module, never the .mlpackage's own numbers."""

import json

import pytest

from ferkit.cli import main

ct = pytest.importorskip("coremltools", reason="the coreml extra (pip install 'ferkit[coreml]') is not installed")


@pytest.mark.parametrize("name", ["seed_vgg", "fast_fer_s"])  # no crop, and a crop inside the graph
def test_coreml_is_a_classifier_with_named_calibrated_probabilities(name, tmp_path):
    import torch

    from ferkit.export.coreml import Calibrated, export_coreml
    from ferkit.export.onnx import contract, wrap_for_export
    from ferkit.labels import CLASS_NAMES
    from ferkit.models import create_model

    torch.manual_seed(0)
    model = create_model(name).eval()
    check = export_coreml(model, tmp_path / "m.mlpackage", {"ferkit_contract": json.dumps(contract(model, 1.3))})
    assert check["outputs"] == {"probabilities": "dictionaryType", "classLabel": "stringType"}
    assert check["inputs"] == {"faces": [1, 1, 48, 48]} and check["labels"] == list(CLASS_NAMES)
    spec = ct.models.MLModel(str(tmp_path / "m.mlpackage"), skip_model_load=True).get_spec()
    assert json.loads(spec.description.metadata.userDefined["ferkit_contract"])["temperature"] == 1.3
    # What was converted: softmax(logits / 1.3) of the same wrapped model every other format exports.
    faces = torch.rand(1, 1, 48, 48) * 255
    with torch.no_grad():
        expected = torch.softmax(wrap_for_export(model)(faces) / 1.3, 1)
        assert torch.allclose(Calibrated(model, 1.3)(faces), expected, atol=1e-6)


def test_coreml_export_through_the_cli(trained, tmp_path, capsys):
    ckpt, _, _ = trained
    out = tmp_path / "m.mlpackage"
    assert main(["export", str(ckpt), "--format", "coreml", "--out", str(out)]) == 0
    assert "'numerically_checked': False" in capsys.readouterr().out and out.is_dir()
