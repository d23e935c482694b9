"""Inference speed on this CPU: ONNX Runtime vs torch eager (same weights), and a whole 640x480 photo.

python benchmarks/bench_runtime.py [--model seed_vgg]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.export.onnx import WithPreprocess, contract, export_onnx
from ferkit.media import sample_photo
from ferkit.models import create_model
from ferkit.runtime import Recognizer


def latencies(fn, runs: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def summarise(name: str, batch1: list[float], batch256: list[float]) -> dict:
    return {
        "engine": name,
        "batch-1 median ms": statistics.median(batch1),
        "batch-1 p90 ms": float(np.percentile(batch1, 90)),
        "batch-256 faces/s": 256 / (statistics.median(batch256) / 1000),
    }


def photo_640x480() -> np.ndarray:
    """matplotlib's grace_hopper.jpg, scaled to 480 px high, centred on a gray 640x480 frame (one face)."""
    img = cv2.imread(str(sample_photo()))
    h, w = img.shape[:2]
    img = cv2.resize(img, (round(w * 480 / h), 480), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 128, np.uint8)
    x = (640 - img.shape[1]) // 2
    frame[:, x : x + img.shape[1]] = img
    return frame


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="seed_vgg")
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    faces = np.random.default_rng(0).integers(0, 256, (256, 48, 48), dtype=np.uint8)
    path = Path(tempfile.mkdtemp()) / "bench.onnx"
    export_onnx(model, path, {"ferkit_contract": json.dumps(contract(model))}, faces[:32])
    rec = Recognizer.from_file(path)
    wrapped = WithPreprocess(model).eval()
    x1, x256 = torch.from_numpy(faces[:1, None].astype(np.float32)), torch.from_numpy(faces[:, None].astype(np.float32))

    def torch_run(x):
        with torch.inference_mode():
            return wrapped(x)

    rows = [
        summarise(
            "ONNX Runtime (ferkit runtime)",
            latencies(lambda: rec.logits(faces[:1]), args.runs),
            latencies(lambda: rec.logits(faces), 20),
        ),
        summarise(
            "torch eager fp32", latencies(lambda: torch_run(x1), args.runs), latencies(lambda: torch_run(x256), 20)
        ),
    ]
    frame = photo_640x480()
    default = Recognizer.default()
    assert len(default.predict(frame)) == 1
    e2e = latencies(lambda: default.predict(frame), 50, warmup=5)
    detect = latencies(lambda: default.detector.detect(frame), 50, warmup=5)
    extra = {
        "end_to_end_640x480_ms_median": statistics.median(e2e),
        "end_to_end_640x480_ms_p90": float(np.percentile(e2e, 90)),
        "detection_only_640x480_ms_median": statistics.median(detect),
        "threads": torch.get_num_threads(),
    }
    report(f"runtime_{args.model}", rows, extra)
    e2e_med, e2e_p90 = extra["end_to_end_640x480_ms_median"], extra["end_to_end_640x480_ms_p90"]
    print(
        f"640x480 photo, one face, detect + align + classify: median {e2e_med:.2f} ms (p90 {e2e_p90:.2f}); "
        f"detection alone {extra['detection_only_640x480_ms_median']:.2f} ms"
    )


if __name__ == "__main__":
    main()
