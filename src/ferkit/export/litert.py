"""LiteRT (.tflite) exports through Google's litert-torch and ai-edge-quantizer, each checked in the LiteRT interpreter.

Every .tflite gets a JSON sidecar (`model.tflite.json`) with the same contract as the ONNX metadata, plus the
input and output tensors as the interpreter sees them (shape, dtype, scale and zero point).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ferkit.errors import require
from ferkit.export.onnx import ExportError, check_int8_agreement, torch_probabilities, wrap_for_export
from ferkit.export.tflite_runtime import TFLiteModel
from ferkit.labels import FACE_SIZE
from ferkit.metrics import softmax

FP16_TOL = 1e-2


def _write_sidecar(path: Path, metadata: dict, extra: dict) -> None:
    model = TFLiteModel(path)
    tensors = {
        role: {
            "name": d["name"],
            "shape": d["shape"].tolist(),
            "dtype": np.dtype(d["dtype"]).name,
            "scale": float(d["quantization"][0]),
            "zero_point": int(d["quantization"][1]),
        }
        for role, d in (("input", model.input), ("output", model.output))
    }
    sidecar = {
        k: json.loads(v) if k in ("ferkit_contract", "recipe", "training_data", "evaluation") else v
        for k, v in metadata.items()
    }
    sidecar.update({"tensors": tensors, **extra})
    path.with_name(path.name + ".json").write_text(json.dumps(sidecar, indent=1))


def export_tflite(
    model: nn.Module, path: str | Path, metadata: dict, parity_faces: np.ndarray, fp16: bool = False
) -> dict:
    """Float32 (or float16-weight) .tflite with a parity check: max |dp| < 1e-4 (fp16: < 1e-2)."""
    litert_torch = require("litert_torch", "export")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = wrap_for_export(model)
    quant = None
    if fp16:
        from litert_torch.generative.quantize import quant_recipes

        quant = quant_recipes.full_fp16_recipe()
    edge = litert_torch.convert(
        wrapped, (torch.zeros(1, model.pretrained_cfg["input_size"][0], FACE_SIZE, FACE_SIZE),), quant_config=quant
    )
    edge.export(str(path))
    temperature = json.loads(metadata["ferkit_contract"])["temperature"]
    got = softmax(TFLiteModel(path).logits(parity_faces).astype(np.float64), temperature)
    diff = float(np.abs(got - torch_probabilities(model, parity_faces, temperature)).max())
    tol = FP16_TOL if fp16 else 1e-4
    if not diff < tol:
        path.unlink(missing_ok=True)
        raise ExportError(
            f"tflite{'-fp16' if fp16 else ''} export differs from torch: max |dp| = {diff:.2e} >= {tol:.0e}"
        )
    result = {"faces": len(parity_faces), "max_abs_prob_diff": diff}
    _write_sidecar(path, metadata, {"weights": "float16" if fp16 else "float32", "parity": result})
    return result


def conv_int8_recipe(static: bool):
    """int8 for every CONV_2D (95% of the seed model's weights and nearly all its compute); the small dense head
    stays float: quantising it too dropped top-1 agreement with torch to 79% (static) / 97.6% (dynamic)."""
    from ai_edge_quantizer import recipe_manager
    from ai_edge_quantizer.recipe import AlgorithmName, TFLOperationName

    manager = recipe_manager.RecipeManager()
    if static:
        manager.add_static_config(
            regex=".*",
            operation_name=TFLOperationName.CONV_2D,
            activation_num_bits=8,
            weight_num_bits=8,
            algorithm_key=AlgorithmName.MIN_MAX_UNIFORM_QUANT,
        )
    else:
        manager.add_dynamic_config(
            regex=".*",
            operation_name=TFLOperationName.CONV_2D,
            num_bits=8,
            algorithm_key=AlgorithmName.MIN_MAX_UNIFORM_QUANT,
        )
    return manager.get_quantization_recipe()


def export_tflite_int8(
    model: nn.Module,
    fp32_tflite: Path,
    path: str | Path,
    metadata: dict,
    calib: np.ndarray,
    check: np.ndarray,
    static: bool = False,
) -> dict:
    """ai-edge-quantizer: full-integer (int8 weights and activations, calibrated on `calib`) or dynamic-range."""
    aq = require("ai_edge_quantizer", "export")
    path = Path(path)
    quantizer = aq.Quantizer(str(fp32_tflite))
    quantizer.load_quantization_recipe(conv_int8_recipe(static))
    calibration = None
    if static:
        batches = [{"args_0": calib[i : i + 1].astype(np.float32)[:, None]} for i in range(len(calib))]
        calibration = quantizer.calibrate({"serving_default": batches})
    quantizer.quantize(calibration).export_model(str(path), overwrite=True)
    temperature = json.loads(metadata["ferkit_contract"])["temperature"]
    probs = softmax(TFLiteModel(path).logits(check).astype(np.float64), temperature)
    try:
        result = check_int8_agreement(model, probs, check, "tflite-int8")
    except ExportError:
        path.unlink(missing_ok=True)
        raise
    scheme = (
        "static: int8 weights and activations" if static else "dynamic range: int8 weights"
    ) + " in every conv; dense head float32"
    _write_sidecar(
        path,
        metadata,
        {
            "weights": "int8",
            "quantization": {"scheme": scheme, "calibration_faces": len(calib) if static else 0},
            "parity": result,
        },
    )
    return result
