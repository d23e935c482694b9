"""Faces chosen to calibrate int8 exports and quantisation-aware training (NumPy only)."""

from __future__ import annotations

import numpy as np


def calibration_faces(images: np.ndarray, labels: np.ndarray, per_class: int = 64, seed: int = 0) -> np.ndarray:
    """(<= 7 * per_class, 48, 48) uint8: Training faces stratified by class, never random noise."""
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(labels == c), size=min(per_class, int((labels == c).sum())), replace=False)
        for c in np.unique(labels)
    ]
    return images[np.sort(np.concatenate(picks))]
