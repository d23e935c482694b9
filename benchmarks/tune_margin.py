"""Tune the face-crop margin on real data: PublicTest faces placed in a larger frame, found by YuNet, aligned.

Each 48 px face is upscaled 4x and padded (replicated borders) to look like a face in a photo; the whole
runtime pipeline (detect -> align -> 48 px -> classify) must then recover it. Accuracy per margin is compared
with classifying the original crops directly. Only PublicTest is used.

    python benchmarks/tune_margin.py [--model path.onnx] [--margins 0.8 0.9 1.0 1.1 1.2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.data import load_fer2013, make_splits
from ferkit.data.quality import unseen_mask
from ferkit.faces import FaceDetector, align_face
from ferkit.runtime import Recognizer

UPSCALE, PAD = 4, 96


def as_photo(face: np.ndarray) -> np.ndarray:
    big = cv2.resize(face, (48 * UPSCALE, 48 * UPSCALE), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--data")
    ap.add_argument("--margins", type=float, nargs="+", default=[0.8, 0.9, 1.0, 1.1, 1.2, 1.3])
    args = ap.parse_args()
    rec = Recognizer.load(args.model)
    splits = make_splits(load_fer2013(args.data), "official")
    val = splits.val
    unseen = unseen_mask(val.images, splits.train.images)  # PublicTest faces with no copy in Training
    detector = FaceDetector()
    photos = [as_photo(f) for f in val.images]
    dets = [detector.detect(p) for p in photos]
    found = np.array([bool(d) for d in dets])
    direct = rec.probabilities(val.images).argmax(1) == val.labels
    rows = [
        {
            "crop": "FER2013 crop as given",
            "margin": "-",
            "faces": len(val),
            "accuracy": float(direct.mean()),
            "accuracy on found faces": float(direct[found].mean()),
            "unseen accuracy on found faces": float(direct[found & unseen].mean()),
        }
    ]
    for m in args.margins:
        crops = np.stack([align_face(p, d[0], m) for p, d in zip(photos, dets, strict=True) if d])
        correct = rec.probabilities(crops).argmax(1) == val.labels[found]
        rows.append(
            {
                "crop": "detect + align",
                "margin": m,
                "faces": int(found.sum()),
                "accuracy": float(correct.sum() / len(val)),
                "accuracy on found faces": float(correct.mean()),
                "unseen accuracy on found faces": float(correct[unseen[found]].mean()),
            }
        )
    best = max(rows[1:], key=lambda r: r["accuracy on found faces"])
    extra = {
        "model": rec.source,
        "detected": int(found.sum()),
        "unseen": int(unseen.sum()),
        "best_margin": best["margin"],
    }
    report("margin_tuning", rows, extra)
    print(f"best margin on PublicTest: {best['margin']}")


if __name__ == "__main__":
    main()
