"""Core ML (.mlpackage) export: a classifier. coremltools converts on Linux, but a Core ML model runs only on Apple
platforms: here it is checked structurally (input, outputs, class labels, contract), never numerically.

The input is the one every ferkit format takes, `faces` (1, 1, 48, 48) float32 raw gray levels 0..255; the
outputs are named class probabilities, already calibrated by the contract's temperature: `probabilities` (a
dictionary label -> probability) and `classLabel` (the most probable expression). An app reads them directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ferkit.errors import ExportError, require
from ferkit.export.onnx import wrap_for_export
from ferkit.labels import FACE_SIZE

INPUT = "faces"
PROBABILITIES = "probabilities"
LABEL = "classLabel"


class Calibrated(nn.Module):
    """(1, C, 48, 48) gray levels 0..255 -> (1, 7) softmax(logits / temperature): what a classifier outputs."""

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        self.model, self.temperature = wrap_for_export(model), float(temperature)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(faces) / self.temperature, dim=1)


def export_coreml(model: nn.Module, path: str | Path, metadata: dict) -> dict:
    ct = require("coremltools", "coreml")
    path = Path(path)
    contract = json.loads(metadata["ferkit_contract"])
    shape = (1, model.pretrained_cfg["input_size"][0], FACE_SIZE, FACE_SIZE)  # the whole face; crops happen inside
    traced = torch.jit.trace(Calibrated(model, contract.get("temperature", 1.0)).eval(), torch.zeros(shape))
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name=INPUT, shape=shape)],
        classifier_config=ct.ClassifierConfig(list(contract["labels"]), predicted_feature_name=LABEL),
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS16,
    )
    spec = mlmodel.get_spec()
    # The probabilities come out under the traced graph's internal name: give them a name an app can rely on.
    ct.utils.rename_feature(spec, spec.description.predictedProbabilitiesName, PROBABILITIES)
    mlmodel = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)
    mlmodel.short_description = "ferkit facial expression classifier (FER2013 classes), calibrated probabilities"
    for key, value in metadata.items():
        mlmodel.user_defined_metadata[key] = value if isinstance(value, str) else json.dumps(value)
    mlmodel.save(str(path))
    return check_coreml_structure(path, contract["labels"])


def check_coreml_structure(path: Path, labels: list[str]) -> dict:
    """Input, outputs, class labels and contract as the saved spec declares them (the model cannot run on Linux)."""
    ct = require("coremltools", "coreml")
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    inputs = {i.name: list(i.type.multiArrayType.shape) for i in spec.description.input}
    outputs = {o.name: o.type.WhichOneof("Type") for o in spec.description.output}
    stored = json.loads(dict(spec.description.metadata.userDefined).get("ferkit_contract", "{}")).get("labels")
    classes = _class_labels(spec)
    expected_outputs = {PROBABILITIES: "dictionaryType", LABEL: "stringType"}
    if (
        inputs != {INPUT: [1, 1, FACE_SIZE, FACE_SIZE]}
        or outputs != expected_outputs
        or stored != labels
        or classes != labels
        or spec.description.predictedProbabilitiesName != PROBABILITIES
    ):
        raise ExportError(
            f"{path}: unexpected Core ML structure: inputs {inputs}, outputs {outputs}, class labels {classes}, "
            f"contract labels {stored}"
        )
    return {"inputs": inputs, "outputs": outputs, "labels": classes, "numerically_checked": False}


def _class_labels(spec) -> list[str]:
    """The classifier's labels: an ML program keeps them as a constant list input of its `classify` operation."""
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type == "classify":
                    listed = op.inputs["classes"].arguments[0].value.immediateValue.list.values
                    return [v.immediateValue.tensor.strings.values[0] for v in listed]
    return []
