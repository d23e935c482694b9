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


def training_curves(phases: list[tuple[str, list[dict]]], out: str | Path) -> Path:
    """Accuracy and loss, train and validation, across the phases of a run (a dashed line marks each phase)."""
    plt = _pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.2), dpi=110)
    offset = 0
    for name, rows in phases:
        epochs = [offset + int(r["epoch"]) + 1 for r in rows]
        for ax, metric in ((ax_acc, "acc"), (ax_loss, "loss")):
            for stage, style in (("train", "-"), ("val", "--")):
                ys = [float(r.get(f"{stage}_{metric}", "nan") or "nan") for r in rows]
                ax.plot(epochs, ys, style, label=f"{name} {stage}")
        if offset:
            for ax in (ax_acc, ax_loss):
                ax.axvline(offset + 0.5, color="gray", lw=0.8, ls=":")
        offset = max(epochs, default=offset)
    for ax, title in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        ax.set_xlabel("epoch (all phases)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, out)


def confusion_figure(
    cm: np.ndarray, out: str | Path, title: str = "Confusion matrix", names: tuple[str, ...] = CLASS_NAMES
) -> Path:
    """Row-normalised confusion matrix with counts in each cell (names: the classes, in row order)."""
    plt = _pyplot()
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            color = "white" if norm[i, j] > 0.5 else "black"
            ax.text(j, i, f"{norm[i, j]:.2f}\n{cm[i, j]}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return _save(fig, out)


def probability_bars(probs: np.ndarray, out: str | Path, title: str = "") -> Path:
    """The seed's per-face bar chart of the 7 expression probabilities."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3), dpi=110)
    bars = ax.bar(CLASS_NAMES, probs, color=["C3" if i == int(np.argmax(probs)) else "C0" for i in range(len(probs))])
    ax.bar_label(bars, labels=[f"{p:.2f}" for p in probs], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, out)


def data_figures(ds, out: str | Path, per_class: int = 8) -> list[Path]:
    """`ferkit data plot`: the class histogram of every labeled usage and a grid of sample faces per class."""
    out = Path(out)
    counts = {u: ds.subset(u).class_counts() for u in ds.usage_names() if ds.subset(u).labeled}
    labeled = ds.select(ds.labels >= 0)
    return [
        class_histogram(counts, out / "class_histogram.png"),
        sample_grid(labeled.images, labeled.labels, out / "samples.png", per_class=per_class),
    ]
