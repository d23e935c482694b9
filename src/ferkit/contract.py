"""The model contract: one module builds it (at export), writes it (ONNX metadata `ferkit_contract`, the .tflite
sidecar, Core ML metadata: all the same JSON) and reads it back validated against the graph (at load). No torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from ferkit.errors import ModelFileError
from ferkit.faces import FER_EYE_CENTER, FER_EYE_DISTANCE
from ferkit.labels import FACE_SIZE


def to_json(contract: dict) -> str:
    """The one serialisation every format stores."""
    return json.dumps(contract)


def build_contract(cfg: dict, temperature: float = 1.0, face_margin: float = 1.0) -> dict:
    """Everything a runtime needs to use a model, stored in the file itself, from the model's pretrained_cfg
    (labels, input size, normalisation) plus its calibration and face framing."""
    c, h, w = cfg["input_size"][0], FACE_SIZE, FACE_SIZE  # exported models take the whole 48 px face
    return {
        "labels": list(cfg["labels"]),
        "input": {
            "name": "faces",
            "shape": ["N", c, h, w],
            "dtype": "float32",
            "layout": "NCHW",
            "values": "gray levels 0..255 (BT.601 luma) of a face aligned as FER2013",
        },
        "normalization": {
            "scale": float(cfg["scale"]),
            "mean": list(cfg["mean"]),
            "std": list(cfg["std"]),
            "where": "inside the model: feed raw gray levels",
        },
        "output": {
            "name": "logits",
            "shape": ["N", len(cfg["labels"])],
            "probabilities": "softmax(logits / temperature)",
        },
        "temperature": float(temperature),
        "face_margin": float(face_margin),
        "face_alignment": {"eye_distance_px": FER_EYE_DISTANCE, "eye_center_px": list(FER_EYE_CENTER), "size": h},
    }


def parse_contract(session, text: str, path: Path) -> dict:
    """The model's contract, checked against the graph itself at load time: a model that would fail on every
    predict (or answer NaN) is refused here, with the reason, instead of loading and failing later."""
    try:
        contract = json.loads(text)
    except ValueError as e:
        raise ModelFileError(f"{path}: its ferkit_contract metadata is not JSON ({e})") from None
    if not isinstance(contract, dict):
        raise ModelFileError(f"{path}: its ferkit_contract metadata is not a JSON object")
    labels = contract.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise ModelFileError(f"{path}: the contract's labels must be a list of names, got {labels!r:.100}")
    temperature = contract.get("temperature", 1.0)
    if not isinstance(temperature, (int, float)) or not 0 < float(temperature) < 1e6:
        raise ModelFileError(f"{path}: the contract's temperature must be a positive number, got {temperature!r}")
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelFileError(
            f"{path}: expected one input and one output, the graph has {len(inputs)} and {len(outputs)}"
        )
    shape = list(inputs[0].shape)
    if len(shape) != 4 or shape[1:] != [1, FACE_SIZE, FACE_SIZE]:
        raise ModelFileError(
            f"{path}: the graph takes {shape}; ferkit models take (N, 1, {FACE_SIZE}, {FACE_SIZE}) gray faces"
        )
    out_shape = list(outputs[0].shape)
    if len(out_shape) != 2 or out_shape[1] != len(labels):
        raise ModelFileError(f"{path}: the graph outputs {out_shape} but the contract names {len(labels)} labels")
    return contract
