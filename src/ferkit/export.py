"""Exports with a parity check each: the exported file must agree with torch on real faces, or nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

import ferkit
from ferkit.errors import FerkitError
from ferkit.faces import FER_EYE_CENTER, FER_EYE_DISTANCE
from ferkit.metrics import softmax
from ferkit.preprocess import faces_to_input

PARITY_TOL = 1e-4  # max |p_onnx - p_torch| over the parity batch


class ExportError(FerkitError, RuntimeError):
    """An export that failed, or whose output does not match torch."""


class WithPreprocess(nn.Module):
    """Gray levels 0..255 in, logits out: the model's own normalisation is baked into the exported graph."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        cfg = model.pretrained_cfg
        self.model = model
        self.register_buffer("scale", torch.tensor(float(cfg["scale"])))
        self.register_buffer("mean", torch.tensor(cfg["mean"], dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(cfg["std"], dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:  # (N, 1, 48, 48) float32 0..255 -> (N, 7)
        return self.model((faces * self.scale - self.mean) / self.std)


def contract(model: nn.Module, temperature: float = 1.0, face_margin: float = 1.0) -> dict:
    """Everything a runtime needs to use the model, stored in the file itself."""
    cfg = model.pretrained_cfg
    c, h, w = cfg["input_size"]
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


@torch.no_grad()
def torch_probabilities(model: nn.Module, faces: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, 48, 48) uint8 -> (N, 7) probabilities from the fp32 torch model."""
    wrapped = WithPreprocess(model.float().eval().to(memory_format=torch.contiguous_format))
    logits = wrapped(torch.from_numpy(faces_to_input(faces))).numpy()
    return softmax(logits.astype(np.float64), temperature)


def export_onnx(model: nn.Module, path: str | Path, metadata: dict, parity_faces: np.ndarray, opset: int = 17) -> dict:
    """Write `path` (dynamic batch axis, ferkit metadata) and prove it equals torch; returns the parity figures."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = WithPreprocess(model.float().eval().to(memory_format=torch.contiguous_format)).eval()
    dummy = torch.zeros(2, *model.pretrained_cfg["input_size"])
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        wrapped,
        (dummy,),
        str(tmp),
        input_names=["faces"],
        output_names=["logits"],
        opset_version=opset,
        dynamo=False,
        dynamic_axes={"faces": {0: "N"}, "logits": {0: "N"}},
    )
    proto = onnx.load(str(tmp))
    proto.producer_name, proto.producer_version = "ferkit", ferkit.__version__
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    parity = check_onnx_parity(model, tmp, parity_faces, json.loads(metadata["ferkit_contract"])["temperature"])
    tmp.replace(path)
    return parity


def check_onnx_parity(model: nn.Module, path: Path, faces: np.ndarray, temperature: float = 1.0) -> dict:
    """ONNX Runtime vs torch on `faces`; raises ExportError past PARITY_TOL."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"faces": faces_to_input(faces)})[0]
    got = softmax(logits.astype(np.float64), temperature)
    want = torch_probabilities(model, faces, temperature)
    diff = float(np.abs(got - want).max())
    agree = float((got.argmax(1) == want.argmax(1)).mean())
    if not diff < PARITY_TOL:
        path.unlink(missing_ok=True)
        raise ExportError(
            f"ONNX export differs from torch: max |dp| = {diff:.2e} >= {PARITY_TOL:.0e} on {len(faces)} faces"
        )
    return {"faces": len(faces), "max_abs_prob_diff": diff, "top1_agreement": agree}
