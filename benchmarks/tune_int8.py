"""Choose the onnx-int8 calibration on PublicTest: top-1 agreement of static QDQ int8 with torch per setting.

Only PublicTest is read (the export's own check on PrivateTest stays the final word).

    python benchmarks/tune_int8.py MODEL.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.data.calibration import calibration_faces
from ferkit.export.onnx import contract, export_onnx, quantize_onnx_static, torch_probabilities
from ferkit.export.pipeline import splits_for
from ferkit.models.checkpoint import load_model
from ferkit.preprocess import faces_to_input

# (activations, calibration method, percentile or None, faces per class)
SETTINGS = [
    ("int8", "MinMax", None, 64),
    ("int8", "Entropy", None, 64),
    ("int8", "Percentile", 99.9, 64),
    ("int8", "Percentile", 99.95, 64),
    ("int8", "Percentile", 99.99, 64),
    ("int8", "Percentile", 99.999, 64),
    ("int8", "Percentile", 99.99, 128),
    ("int16", "MinMax", None, 64),
    ("int16", "Percentile", 99.99, 64),
]


def agreement(fp32: Path, calib, faces, want, acts: str, method: str, pct: float | None) -> float:
    import onnxruntime as ort

    out = fp32.with_name("q.onnx")
    quantize_onnx_static(fp32, out, calib, acts, method, pct)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"faces": faces_to_input(faces)})[0].argmax(1)
    return float((got == want).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data")
    ap.add_argument("--name", default="int8_calibration", help="results/NAME.json")
    args = ap.parse_args()
    model, ckpt = load_model(args.model)
    splits = splits_for(ckpt, args.data)
    fp32 = Path(tempfile.mkdtemp(prefix="ferkit-int8-")) / "fp32.onnx"
    export_onnx(model, fp32, {"ferkit_contract": json.dumps(contract(model))}, splits.val.images[:64])
    want = torch_probabilities(model, splits.val.images).argmax(1)
    rows = []
    for acts, method, pct, per_class in SETTINGS:
        calib = calibration_faces(splits.train.images, splits.train.labels, per_class=per_class)
        agree = agreement(fp32, calib, splits.val.images, want, acts, method, pct)
        row = {"activations": acts, "method": method, "percentile": pct, "faces/class": per_class}
        rows.append({**row, "PublicTest agreement": agree})
    report(args.name, rows, {"model": args.model, "faces": len(want)})


if __name__ == "__main__":
    main()
