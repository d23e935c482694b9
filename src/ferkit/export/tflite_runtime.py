"""Run a .tflite file with the LiteRT interpreter (`ai-edge-litert`); no torch. Used by parity checks and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ferkit.errors import FerkitError, require
from ferkit.preprocess import faces_to_input


class TFLiteModel:
    """A LiteRT model with batch-1 input (N, 1, 48, 48) float32 gray levels; `logits(faces)` loops over faces."""

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        require("ai_edge_litert", "export")
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise FerkitError(f"{self.path}: no such model file")
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise FerkitError(f"{self.path}: not a loadable LiteRT model ({str(e).splitlines()[0][:200]})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        sidecar = self.path.with_name(self.path.name + ".json")
        self.contract = json.loads(sidecar.read_text())["ferkit_contract"] if sidecar.is_file() else None

    def _quantise(self, x: np.ndarray) -> np.ndarray:
        scale, zero = self.input["quantization"]
        if self.input["dtype"] == np.float32 or not scale:
            return x.astype(self.input["dtype"])
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])

    def _dequantise(self, y: np.ndarray) -> np.ndarray:
        scale, zero = self.output["quantization"]
        return y.astype(np.float32) if not scale else (y.astype(np.float32) - zero) * scale

    def logits(self, faces: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 -> (N, 7) float32, one invoke per face (phones run batch 1)."""
        x = faces_to_input(faces)  # (N, 1, 48, 48) float32 0..255
        out = np.empty((len(faces), int(self.output["shape"][-1])), np.float32)
        for i in range(len(faces)):
            self.interpreter.set_tensor(self.input["index"], self._quantise(x[i : i + 1]))
            self.interpreter.invoke()
            out[i] = self._dequantise(self.interpreter.get_tensor(self.output["index"]))[0]
        return out
