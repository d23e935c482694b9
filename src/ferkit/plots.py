"""Figures as PNG files. matplotlib is imported inside each function (the `plot` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferkit.errors import require
from ferkit.labels import CLASS_NAMES


def _pyplot():
    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def class_histogram(counts: dict[str, np.ndarray], out: str | Path, title: str = "FER2013 images per class") -> Path:
    """The seed's class histogram: one group of bars per split, the count written on each bar."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    x = np.arange(len(CLASS_NAMES))
    width = 0.8 / max(len(counts), 1)
    for k, (name, c) in enumerate(counts.items()):
        bars = ax.bar(x + (k - (len(counts) - 1) / 2) * width, c, width, label=f"{name} ({int(c.sum())})")
        ax.bar_label(bars, labels=[str(int(v)) for v in c], fontsize=7, padding=1)
    ax.set_xticks(x, CLASS_NAMES)
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return _save(fig, out)


def sample_grid(images: np.ndarray, labels: np.ndarray, out: str | Path, per_class: int = 8, seed: int = 0) -> Path:
    """A grid of `per_class` random faces for each class, one row per class, labelled."""
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(CLASS_NAMES), per_class, figsize=(per_class * 0.9, len(CLASS_NAMES)), dpi=110)
    axes = np.asarray(axes).reshape(len(CLASS_NAMES), per_class)
    for c, name in enumerate(CLASS_NAMES):
        idx = np.flatnonzero(labels == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for j, ax in enumerate(axes[c]):
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(pick):
                ax.imshow(images[pick[j]], cmap="gray", vmin=0, vmax=255)
        axes[c, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle("FER2013 samples per class")
    fig.tight_layout()
    return _save(fig, out)


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    _pyplot().close(fig)
    return out
