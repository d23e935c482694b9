"""Core ML (.mlpackage) export. coremltools converts on Linux, but a Core ML model runs only on Apple platforms:
here it is checked structurally (inputs, outputs, labels), never numerically."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ferkit.errors import require
from ferkit.export.onnx import ExportError, wrap_for_export
from ferkit.labels import FACE_SIZE


def export_coreml(model: nn.Module, path: str | Path, metadata: dict) -> dict:
    ct = require("coremltools", "coreml")
    path = Path(path)
    wrapped = wrap_for_export(model)
    shape = (1, model.pretrained_cfg["input_size"][0], FACE_SIZE, FACE_SIZE)  # the whole face; crops happen inside
    traced = torch.jit.trace(wrapped, torch.zeros(shape))
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name="faces", shape=shape)],
        outputs=[ct.TensorType(name="logits")],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
    )
    for key, value in metadata.items():
        mlmodel.user_defined_metadata[key] = value if isinstance(value, str) else json.dumps(value)
    mlmodel.save(str(path))
    return check_coreml_structure(path, json.loads(metadata["ferkit_contract"])["labels"])


def check_coreml_structure(path: Path, labels: list[str]) -> dict:
    """Inputs, outputs and labels as the saved spec declares them (the model itself cannot run on Linux)."""
    ct = require("coremltools", "coreml")
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    inputs = {i.name: list(i.type.multiArrayType.shape) for i in spec.description.input}
    outputs = [o.name for o in spec.description.output]
    stored = json.loads(dict(spec.description.metadata.userDefined).get("ferkit_contract", "{}")).get("labels")
    if inputs != {"faces": [1, 1, FACE_SIZE, FACE_SIZE]} or outputs != ["logits"] or stored != labels:
        raise ExportError(f"{path}: unexpected Core ML structure: inputs {inputs}, outputs {outputs}, labels {stored}")
    return {"inputs": inputs, "outputs": outputs, "labels": stored, "numerically_checked": False}
