"""The in-memory FER2013 dataset: one uint8 array of faces plus labels and usage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ferkit.labels import CLASS_NAMES, FACE_SIZE

IMAGE_SIZE = FACE_SIZE  # the data layer's name for it
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
# The three official FER2013 usages; "Test" marks rows of unlabeled or unsplit test copies.
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
ALL_USAGES: tuple[str, ...] = (*USAGES, "Test")


@dataclass(frozen=True)
class SkippedRow:
    """A row or file left out under on_error="skip", and why."""

    where: str  # "line 17" or a file path
    reason: str


@dataclass
class FERDataset:
    """FER2013 in memory.

    images: (N, 48, 48) uint8; labels: (N,) int64, -1 when unlabeled;
    usage: (N,) str, one of ALL_USAGES; origin: (N,) int64, the source line (CSV) or file index.
    votes: (N, 10) uint8 FER+ crowd votes (ferkit.data.ferplus.FERPLUS_COLUMNS order) when joined, else None;
    votes_usable: (N,) bool, rows whose votes may be used (a named face, votes verified against its pixels).
    """

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    origin: np.ndarray
    source: str = ""
    layout: str = ""
    skipped: list[SkippedRow] = field(default_factory=list)
    classes: tuple[str, ...] = CLASS_NAMES
    votes: np.ndarray | None = None
    votes_usable: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"images must be uint8 (N, 48, 48), got {self.images.dtype} {self.images.shape}")
        names = ("labels", "usage", "origin") + (("votes", "votes_usable") if self.votes is not None else ())
        for name in names:
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    def select(self, index: np.ndarray) -> FERDataset:
        """A new dataset of the rows picked by a boolean mask or an index array."""
        return FERDataset(
            images=self.images[index],
            labels=self.labels[index],
            usage=self.usage[index],
            origin=self.origin[index],
            source=self.source,
            layout=self.layout,
            skipped=list(self.skipped),
            classes=self.classes,
            votes=None if self.votes is None else self.votes[index],
            votes_usable=None if self.votes_usable is None else self.votes_usable[index],
        )

    def subset(self, *usages: str) -> FERDataset:
        """Rows whose usage is one of `usages` (e.g. "Training")."""
        unknown = set(usages) - set(ALL_USAGES)
        if unknown:
            raise ValueError(f"unknown usage {sorted(unknown)}; expected some of {ALL_USAGES}")
        return self.select(np.isin(self.usage, usages))

    @property
    def labeled(self) -> bool:
        return bool(len(self)) and bool((self.labels >= 0).all())

    def class_counts(self) -> np.ndarray:
        """(classes,) int64: images per class (unlabeled rows are not counted)."""
        return np.bincount(self.labels[self.labels >= 0], minlength=len(self.classes))

    def usage_names(self) -> list[str]:
        """The usages present, in official order."""
        return [u for u in ALL_USAGES if (self.usage == u).any()]
