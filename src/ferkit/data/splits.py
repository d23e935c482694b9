"""Train/validation/test splits: the official FER2013 protocol and the seed notebook's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferkit.data.dataset import FERDataset
from ferkit.data.quality import duplicate_groups
from ferkit.errors import DataError

SPLITS = ("official", "notebook")


@dataclass
class Splits:
    """train fits weights; val chooses everything; test is read once per final model."""

    name: str
    train: FERDataset
    val: FERDataset
    test: FERDataset


def make_splits(ds: FERDataset, kind: str = "official", seed: int = 42, test_fraction: float = 0.2) -> Splits:
    """official: Training / PublicTest / PrivateTest.

    notebook: the seed notebook's random split of the Training rows (80/20 by default, seeded).
    The notebook validated on its own test part, so val is test there: its figures are optimistic,
    and a random split of Training also leaks exact duplicates (see quality.duplicate_report).
    """
    if kind == "official":
        parts = [ds.subset(u) for u in ("Training", "PublicTest", "PrivateTest")]
        missing = [u for u, p in zip(("Training", "PublicTest", "PrivateTest"), parts, strict=True) if not p.labeled]
        if missing:
            raise DataError(
                f"{ds.source}: the official split needs labeled {', '.join(missing)} rows; "
                f"this {ds.layout} data has {', '.join(ds.usage_names()) or 'none'}. Use fer2013.csv(.gz)."
            )
        return Splits("official", *parts)
    if kind == "notebook":
        train = ds.subset("Training")
        if not train.labeled:
            raise DataError(f"{ds.source}: the notebook split needs labeled Training rows")
        order = np.random.default_rng(seed).permutation(len(train))
        n_test = round(len(train) * test_fraction)
        test = train.select(np.sort(order[:n_test]))
        return Splits("notebook", train.select(np.sort(order[n_test:])), test, test)
    raise ValueError(f"unknown split {kind!r}; expected one of {', '.join(SPLITS)}")


def holdout_without_shared_images(images: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions 0..N-1 of images (N, 48, 48) into (fit, val), about `fraction` in val, sorted.

    Identical images stay on one side (whole duplicate groups are drawn), so the validation part never shares an
    image with the part it validates: FER2013's Training repeats 2,247 of its images.
    """
    groups = duplicate_groups(images)  # (N,) group id, 0..G-1
    order = np.random.default_rng(seed).permutation(groups.max() + 1)  # groups in a seeded random order
    n_val = max(1, round(len(images) * fraction))
    covered = np.cumsum(np.bincount(groups)[order])  # images held out after taking the first k groups
    val_groups = order[: int(np.searchsorted(covered, n_val)) + 1]
    in_val = np.isin(groups, val_groups)
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def kfold_assignment(images: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """(N, 48, 48) images -> (N,) int64 fold of each image, 0..folds-1, about N / folds each.

    Whole duplicate groups go to one fold (each group, in a seeded random order, to the fold holding fewest images
    so far), so a fold model never trained on a copy of an image it predicts out of fold. The same images, folds and
    seed always give the same assignment: each fold run recomputes it, and so does the out-of-fold prediction file.
    """
    if folds < 2:
        raise ValueError(f"k-fold needs at least 2 folds, got {folds}")
    groups = duplicate_groups(images)  # (N,) group id, 0..G-1
    if groups.max() + 1 < folds:
        raise ValueError(f"{len(images)} images in {groups.max() + 1} distinct groups cannot fill {folds} folds")
    sizes = np.bincount(groups)
    fold_of_group = np.zeros(len(sizes), np.int64)
    filled = np.zeros(folds, np.int64)
    for g in np.random.default_rng(seed).permutation(len(sizes)):
        f = int(filled.argmin())
        fold_of_group[g], filled[f] = f, filled[f] + sizes[g]
    return fold_of_group[groups]
