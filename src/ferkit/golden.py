"""Golden outputs of the bundled model: fixed inputs, their probabilities pinned by tests/golden/."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ferkit.labels import FACE_SIZE


def golden_faces() -> np.ndarray:
    """(8, 48, 48) uint8: deterministic face-like patterns (no dataset image is committed)."""
    yy, xx = np.mgrid[0:FACE_SIZE, 0:FACE_SIZE].astype(np.float32)
    faces = []
    for k in range(8):
        base = 90 + 12 * k + 40 * np.sin((xx + 3 * k) / 9.0) * np.cos((yy - 2 * k) / 11.0)
        eyes = ((xx - 15) ** 2 + (yy - 18) ** 2 < 9 + k) | ((xx - 33) ** 2 + (yy - 18) ** 2 < 9 + k)
        mouth = (np.abs(yy - (33 + k % 3)) < 1.5 + k % 2) & (np.abs(xx - 24) < 6 + k)
        faces.append(np.clip(base - 70 * eyes - 60 * mouth, 0, 255))
    return np.stack(faces).astype(np.uint8)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_golden(recognizer, out: str | Path) -> Path:
    """Pin `recognizer`'s probabilities on golden_faces() (and the model file's hash) in a JSON file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    probs = recognizer.probabilities(golden_faces())
    out.write_text(
        json.dumps(
            {
                "model_sha256": file_sha256(recognizer.source),
                "labels": list(recognizer.labels),
                "probabilities": np.round(probs.astype(np.float64), 7).tolist(),
            },
            indent=1,
        )
    )
    return out
