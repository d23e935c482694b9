"""Every export format of one trained model: size, PrivateTest accuracy, agreement with torch, batch-1 latency.

python benchmarks/bench_exports.py MODEL.pt_or_ckpt [--data PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import batch1_ms, report

from ferkit.data.quality import unseen_mask
from ferkit.export.onnx import ExportError, torch_probabilities
from ferkit.export.pipeline import FORMATS, SUFFIX, export_checkpoint, splits_for
from ferkit.models.checkpoint import load_model


def runner(fmt: str, path: Path):
    """A function (N, 48, 48) uint8 -> (N, 7) logits through the format's own runtime."""
    if fmt.startswith("onnx"):
        from ferkit.runtime import Recognizer

        return Recognizer.from_file(path).logits
    from ferkit.export.tflite_runtime import TFLiteModel

    return TFLiteModel(path).logits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data")
    args = ap.parse_args()
    model, ckpt = load_model(args.model)
    splits = splits_for(ckpt, args.data)
    test = splits.test
    unseen = unseen_mask(test.images, splits.train.images)  # PrivateTest images with no copy in Training
    want = torch_probabilities(model, test.images)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="ferkit-bench-"))
    variants = [(f, False) for f in FORMATS if f != "coreml"]  # Core ML cannot run on Linux
    variants += [(f, True) for f in FORMATS if f.endswith("int8")]  # --int8 static: full integer
    for fmt, static in variants:
        out = work / f"model{'.static' if static else ''}{SUFFIX[fmt]}"
        name = f"{fmt} --int8 static" if static else fmt
        try:
            export_checkpoint(Path(args.model), out, args.data, fmt=fmt, int8_static=static)
        except ExportError as e:  # a refused export is a result too: its check failed, no file was kept
            rows.append(
                {
                    "format": name,
                    "MB": float("nan"),
                    "PrivateTest acc": float("nan"),
                    "unseen acc": float("nan"),
                    "top-1 agreement": float("nan"),
                    "ms/face median": float("nan"),
                    "ms/face p90": float("nan"),
                    "refused": str(e),
                }
            )
            continue
        fn = runner(fmt, out)
        got = fn(test.images)
        ms = batch1_ms(fn, test.images)
        rows.append(
            {
                "format": name,
                "MB": out.stat().st_size / 1e6,
                "PrivateTest acc": float((got.argmax(1) == test.labels).mean()),
                "unseen acc": float((got.argmax(1) == test.labels)[unseen].mean()),
                "top-1 agreement": float((got.argmax(1) == want.argmax(1)).mean()),
                "ms/face median": statistics.median(ms),
                "ms/face p90": float(np.percentile(ms, 90)),
            }
        )
    rows.insert(
        0,
        {
            "format": "torch fp32 (reference)",
            "MB": sum(p.numel() * 4 for p in model.state_dict().values()) / 1e6,
            "PrivateTest acc": float((want.argmax(1) == test.labels).mean()),
            "unseen acc": float((want.argmax(1) == test.labels)[unseen].mean()),
            "top-1 agreement": 1.0,
            "ms/face median": float("nan"),
            "ms/face p90": float("nan"),
        },
    )
    report("exports", rows, {"model": args.model, "faces": len(test), "unseen_faces": int(unseen.sum())})


if __name__ == "__main__":
    main()
