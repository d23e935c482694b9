"""ONNX Runtime's static int8 forms of one float ferkit .onnx, side by side in one run: for each (format,
activation type, quantised ops, 7-bit weights), top-1 agreement with the float file and accuracy on PublicTest, and
the batch-1 latency (best of 5 rounds of 200 faces). Prints a table, writes benchmarks/results/int8_onnx_<stem>.json.

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

VARIANTS = [  # (format, activations, ops, reduce_range)
    ("QDQ", "int8", ("Conv",), False),
    ("QOperator", "uint8", ("Conv",), False),
    ("QOperator", "uint8", ("Conv",), True),
    ("QOperator", "uint8", ("Conv", "Relu", "MaxPool"), False),
    ("QOperator", "uint8", ("Conv", "Relu", "MaxPool"), True),
]


def run_all(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    return np.concatenate([session.run(None, {"faces": x[i : i + 512]})[0] for i in range(0, len(x), 512)])


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
    float_session = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    reference = run_all(float_session, x).argmax(1)
    sessions = {("float", "-", "-", False): float_session}
    for fmt, act, ops, reduce in VARIANTS:
        out = work / f"{fmt}-{act}-{'-'.join(ops)}-{reduce}.onnx"
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
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": 99.99},
        )
        sessions[fmt, act, ",".join(ops), reduce] = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rows = []
    for (fmt, act, ops, reduce), session in sessions.items():
        top = run_all(session, x).argmax(1)
        rows.append(
            {
                "format": fmt,
                "activations": act,
                "quantised ops": ops,
                "7-bit weights": reduce,
                "agreement with float (PublicTest)": float((top == reference).mean()),
                "PublicTest accuracy": float((top == labels).mean()),
                "batch-1 ms": batch1_ms(session, x),
            }
        )
    report(f"int8_onnx_{Path(args.onnx).parent.name or Path(args.onnx).stem}", rows, {"calibration_faces": len(calib)})


if __name__ == "__main__":
    main()
