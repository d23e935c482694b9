"""Data-quality facts of FER2013: exact duplicates across splits and near-blank images.

They are reported, never fixed: published numbers include the duplicated test images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ferkit.data.dataset import FERDataset

# A face with pixel standard deviation under this is blank or nearly so (a flat gray square).
BLANK_STD = 3.0


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """(N,) int64 group id per image; identical images share one id."""
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    rows = flat.view(np.dtype((np.void, flat.shape[1]))).ravel()
    _, inverse = np.unique(rows, return_inverse=True)
    return inverse.ravel().astype(np.int64)


@dataclass
class QualityReport:
    within_training: int  # Training images that have an exact copy elsewhere in Training
    public_in_training: int  # PublicTest images that also appear in Training
    private_in_training: int
    private_in_public: int
    conflicting_groups: int  # duplicate groups whose copies carry different labels
    near_blank: int  # images with pixel std < BLANK_STD
    near_blank_by_usage: dict[str, int]


def _members(groups: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(G,) bool: groups with at least one member in mask."""
    present = np.zeros(groups.max() + 1, dtype=bool)
    present[groups[mask]] = True
    return present


def near_blank_mask(images: np.ndarray) -> np.ndarray:
    """(N,) bool: images whose pixel std is under BLANK_STD."""
    return images.reshape(len(images), -1).std(axis=1) < BLANK_STD


def quality_report(ds: FERDataset) -> QualityReport:
    groups = duplicate_groups(ds.images)
    size = np.bincount(groups)
    train = ds.usage == "Training"
    in_train = _members(groups, train)
    in_public = _members(groups, ds.usage == "PublicTest")
    labeled = ds.labels >= 0
    # A group conflicts when its labeled members disagree: compare each member to the group's minimum.
    low = np.full(groups.max() + 1, 99)
    np.minimum.at(low, groups[labeled], ds.labels[labeled])
    high = np.full(groups.max() + 1, -1)
    np.maximum.at(high, groups[labeled], ds.labels[labeled])
    blank = near_blank_mask(ds.images)
    train_counts = np.bincount(groups[train], minlength=len(size))
    return QualityReport(
        within_training=int((train & (train_counts[groups] > 1)).sum()),
        public_in_training=int(((ds.usage == "PublicTest") & in_train[groups]).sum()),
        private_in_training=int(((ds.usage == "PrivateTest") & in_train[groups]).sum()),
        private_in_public=int(((ds.usage == "PrivateTest") & in_public[groups]).sum()),
        conflicting_groups=int(((high > low) & (size > 1)).sum()),
        near_blank=int(blank.sum()),
        near_blank_by_usage={u: int((blank & (ds.usage == u)).sum()) for u in ds.usage_names()},
    )


def unseen_mask(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N,) bool: images with no exact copy among `reference` (e.g. test images that are not in Training).

    For reporting only: the "unseen" figure beside each official one shows what memorised duplicates add.
    """
    both = np.concatenate([reference, images])
    groups = duplicate_groups(both)
    in_reference = np.zeros(groups.max() + 1, dtype=bool)
    in_reference[groups[: len(reference)]] = True
    return ~in_reference[groups[len(reference) :]]


@dataclass
class DatasetInfo:
    """What `ferkit data info` reports about a loaded data set."""

    source: str
    layout: str
    rows: int
    counts: dict[str, list[int] | None]  # usage -> images per class (None: the usage is unlabeled)
    sizes: dict[str, int]  # usage -> images
    quality: QualityReport
    skipped: int
    ferplus: Any = None  # FerPlusFacts when FER+ votes were found for these rows
    ferplus_note: str = ""  # why there are none
    classes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ferplus"] = d["ferplus"] if self.ferplus is not None else self.ferplus_note
        del d["ferplus_note"], d["sizes"]
        return d


def dataset_info(ds: FERDataset, ferplus: str | None = None) -> DatasetInfo:
    """Counts per usage and class, the quality facts and, when FER+ votes are at hand, their facts."""
    from ferkit.data.ferplus import ferplus_facts_for
    from ferkit.labels import CLASS_NAMES

    parts = {u: ds.subset(u) for u in ds.usage_names()}
    facts, note = ferplus_facts_for(ds, ferplus)
    return DatasetInfo(
        source=ds.source,
        layout=ds.layout,
        rows=len(ds),
        counts={u: part.class_counts().tolist() if part.labeled else None for u, part in parts.items()},
        sizes={u: len(part) for u, part in parts.items()},
        quality=quality_report(ds),
        skipped=len(ds.skipped),
        ferplus=facts,
        ferplus_note=note,
        classes=list(CLASS_NAMES),
    )
