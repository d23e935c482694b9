"""ONNX Runtime's static int8 forms of one float ferkit .onnx, side by side in one run: for each (format,
activation type, quantised ops, 7-bit weights, activation ranges), top-1 agreement with the float file and accuracy
on PublicTest, and the batch-1 latency on 2 threads and on 1 (best of 5 rounds of 200 faces). Prints a table, writes
benchmarks/results/int8_onnx_<stem>.json. The shipped form (`ferkit export --format onnx-int8 --int8 static`) is
QOperator, uint8, Conv+Relu+MaxPool, 7-bit, STATIC_PERCENTILE.

    benchmarks/bench_int8_onnx.py runs/RUN/model.onnx
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from common import report
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from ferkit.data import load_fer2013, make_splits
from ferkit.data.calibration import calibration_faces
from ferkit.export.onnx import _calibration_reader
from ferkit.preprocess import faces_to_input

FUSED = ("Conv", "Relu", "MaxPool")
VARIANTS = [  # (format, activations, ops, reduce_range, activation ranges: a percentile or "minmax")
    ("QDQ", "int8", ("Conv",), False, 99.99),
    ("QOperator", "uint8", ("Conv",), True, 99.99),
    ("QOperator", "uint8", FUSED, False, 99.99),
    ("QOperator", "uint8", FUSED, True, 99.99),
    ("QOperator", "uint8", FUSED, True, 99.999),
    ("QOperator", "uint8", FUSED, True, "minmax"),
]


def run_all(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    return np.concatenate([session.run(None, {"faces": x[i : i + 512]})[0] for i in range(0, len(x), 512)])


def calibration(ranges: float | str) -> dict:
    if ranges == "minmax":
        return {"calibrate_method": CalibrationMethod.MinMax}
    return {"calibrate_method": CalibrationMethod.Percentile, "extra_options": {"CalibPercentile": ranges}}


def session_of(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def batch1_ms(session: ort.InferenceSession, x: np.ndarray) -> float:
    one, rounds = x[:1], []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(200):
            session.run(None, {"faces": one})
        rounds.append((time.perf_counter() - t) / 200 * 1e3)
    return min(rounds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx", help="a float ferkit .onnx (ferkit export MODEL.pt --format onnx)")
    ap.add_argument("--data", help="FER2013 (default: found as ferkit finds it)")
    args = ap.parse_args()
    splits = make_splits(load_fer2013(args.data), "official")
    calib = calibration_faces(splits.train.images, splits.train.labels)
    x, labels = faces_to_input(splits.val.images), splits.val.labels
    work = Path(tempfile.mkdtemp(prefix="ferkit-int8-"))
    pre = work / "pre.onnx"
    quant_pre_process(args.onnx, str(pre))
    paths = {("float", "-", "-", False, "-"): args.onnx}
    for fmt, act, ops, reduce, ranges in VARIANTS:
        out = work / f"{fmt}-{act}-{'-'.join(ops)}-{reduce}-{ranges}.onnx"
        quantize_static(
            str(pre),
            str(out),
            _calibration_reader(calib),
            reduce_range=reduce,
            quant_format=getattr(QuantFormat, fmt),
            per_channel=True,
            activation_type=QuantType.QUInt8 if act == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(ops),
            **calibration(ranges),
        )
        paths[fmt, act, ",".join(ops), reduce, ranges] = out
    reference = run_all(session_of(args.onnx), x).argmax(1)
    rows = []
    for (fmt, act, ops, reduce, ranges), path in paths.items():
        session = session_of(path)
        top = run_all(session, x).argmax(1)
        rows.append(
            {
                "format": fmt,
                "activations": act,
                "quantised ops": ops,
                "7-bit weights": reduce,
                "ranges": str(ranges),
                "agreement with float (PublicTest)": float((top == reference).mean()),
                "PublicTest accuracy": float((top == labels).mean()),
                "batch-1 ms": batch1_ms(session, x),
                "batch-1 ms, 1 thread": batch1_ms(session_of(path, threads=1), x),
            }
        )
    report(f"int8_onnx_{Path(args.onnx).parent.name or Path(args.onnx).stem}", rows, {"calibration_faces": len(calib)})


if __name__ == "__main__":
    main()
