"""FER+ (Barsoum et al., ICMI 2016): Microsoft's 10 crowd votes per FER2013 image, read and joined row by row.

`fer2013new.csv` has one row per row of fer2013.csv, in the same order:
`Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF`.
Rows FER+ judged not a face have an empty image name. NumPy only (runtime layer).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferkit.data import cache
from ferkit.data.dataset import USAGES, FERDataset
from ferkit.errors import DataError, DataNotFoundError
from ferkit.labels import CLASS_NAMES

FERPLUS_EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)
FERPLUS_COLUMNS: tuple[str, ...] = (*FERPLUS_EMOTIONS, "unknown", "NF")
# FER+ emotion column -> FER2013 class (0 angry .. 6 neutral). Contempt has no FER2013 class.
FERPLUS_TO_FER2013: dict[str, str] = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
}
# Rows whose FER+ image name is also given to a later row: FER+'s PNG holds the later row's pixels, so these
# rows' votes cannot be verified against their own pixels (shared/datasets/ferplus/README.md) and count as unknown.
UNVERIFIED_ROWS: tuple[int, ...] = (5274, 5348, 8423, 33200)
FERPLUS_FILE = "fer2013new.csv"
HOW_TO_GET_FERPLUS = (
    "FER+ votes (fer2013new.csv) are not here. Get them from the microsoft/FERPlus repository (MIT licence), then "
    "point ferkit at the file with --ferplus PATH or FERKIT_FERPLUS=PATH."
)
_HEADER = ("Usage", "Image name", *FERPLUS_COLUMNS)
_FOLDER_USAGE = {"FER2013Train": "Training", "FER2013Valid": "PublicTest", "FER2013Test": "PrivateTest"}


@dataclass
class FerPlusVotes:
    """votes: (N, 10) uint8 in FERPLUS_COLUMNS order; usage: (N,) str; names: (N,) str ("" for not-a-face)."""

    votes: np.ndarray
    usage: np.ndarray
    names: np.ndarray
    source: str

    def usable(self) -> np.ndarray:
        """(N,) bool: a named face, not an unverified row, with at least one vote."""
        ok = (self.names != "") & (self.votes.sum(1) > 0)
        ok[[r for r in UNVERIFIED_ROWS if r < len(ok)]] = False
        return ok


def read_ferplus(path: str | Path) -> FerPlusVotes:
    """Parse fer2013new.csv; a malformed row is a DataError naming the file and line."""
    path = Path(path)
    votes, usage, names = [], [], []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = tuple(h.strip() for h in next(reader, ()))
        if header != _HEADER:
            raise DataError(f"{path}: not a FER+ votes file (header {','.join(header)[:200]!r}, expected {_HEADER})")
        for lineno, row in enumerate(reader, start=2):
            if len(row) != len(_HEADER) or row[0] not in USAGES:
                raise DataError(f"{path}, line {lineno}: expected Usage, name and 10 vote counts, got {row[:12]!r}")
            try:
                counts = [int(v) for v in row[2:]]
            except ValueError:
                raise DataError(f"{path}, line {lineno}: vote counts must be integers, got {row[2:]!r}") from None
            if min(counts) < 0 or max(counts) > 255:
                raise DataError(f"{path}, line {lineno}: vote counts out of range 0..255: {counts}")
            usage.append(row[0])
            names.append(row[1].strip())
            votes.append(counts)
    if not votes:
        raise DataError(f"{path}: no rows")
    return FerPlusVotes(
        np.array(votes, dtype=np.uint8), np.array(usage, dtype="<U11"), np.array(names), _describe(path)
    )


def _describe(path: Path) -> str:
    """A file named by its name and sha256, never by a local absolute path (it may end up in a model file)."""
    return f"{path.name} (sha256 {cache.source_key(path)[:16]})"


def default_ferplus_locations() -> list[Path]:
    from ferkit.data.source import shared_places

    return shared_places("ferplus")


def locate_ferplus(path: str | Path | None = None) -> Path:
    """fer2013new.csv: `path`, else $FERKIT_FERPLUS, else ../shared/datasets/ferplus, else the cache folder."""
    explicit = path or os.environ.get("FERKIT_FERPLUS")
    places = [Path(explicit).expanduser()] if explicit else default_ferplus_locations()
    for place in places:
        candidate = place / FERPLUS_FILE if place.is_dir() else place
        if candidate.is_file():
            return candidate
    tried = "\n".join(f"  {p}" for p in places)
    raise DataNotFoundError(f"{HOW_TO_GET_FERPLUS}\nLooked in:\n{tried}")


def join_ferplus(ds: FERDataset, votes: FerPlusVotes) -> FERDataset:
    """ds with votes attached row by row; the two files must hold the same rows in the same order."""
    if len(ds) != len(votes.votes) or not np.array_equal(ds.usage, votes.usage):
        mismatch = (
            f"{len(ds)} rows against {len(votes.votes)}"
            if len(ds) != len(votes.votes)
            else f"Usage differs first at row {int(np.flatnonzero(ds.usage != votes.usage)[0])}"
        )
        raise DataError(
            f"FER+ votes {votes.source} do not belong to {ds.source}: {mismatch}. "
            "fer2013new.csv joins only the full fer2013.csv in its original row order."
        )
    return FERDataset(
        images=ds.images,
        labels=ds.labels,
        usage=ds.usage,
        origin=ds.origin,
        source=ds.source,
        layout=ds.layout,
        skipped=list(ds.skipped),
        votes=votes.votes,
        votes_usable=votes.usable(),
    )


def with_votes(ds: FERDataset, ferplus: str | Path | None = None) -> FERDataset:
    """ds with its FER+ votes: as it is when it carries them (a FER+ image folder), else joined from the votes file
    found by `locate_ferplus(ferplus)`."""
    return ds if ds.votes is not None else join_ferplus(ds, read_ferplus(locate_ferplus(ferplus)))


def load_with_ferplus(data: str | Path | None = None, ferplus: str | Path | None = None, **kw) -> FERDataset:
    """FER2013 (ferkit.data.load_fer2013) joined with its FER+ votes."""
    from ferkit.data.source import load_fer2013

    return with_votes(load_fer2013(data, **kw), ferplus)


def fer2013_distribution(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 10) votes -> ((N, 7) float32 vote shares over FER2013's classes in FER2013 order, (N,) bool usable).

    Contempt, unknown and not-a-face votes are dropped (FER2013 has no class for them) and the rest renormalised;
    a row with no vote left is all zeros and not usable.
    """
    out = np.zeros((len(votes), len(CLASS_NAMES)), np.float32)
    for col, fer_name in FERPLUS_TO_FER2013.items():
        out[:, CLASS_NAMES.index(fer_name)] = votes[:, FERPLUS_COLUMNS.index(col)]
    total = out.sum(1)
    usable = total > 0
    out[usable] /= total[usable, None]
    return out, usable


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """(N, 10) votes -> (N,) int64 FER+ 8-class label (FERPLUS_EMOTIONS order), -1 where FER+ drops the image.

    FER+'s own rule (microsoft/FERPlus src/ferplus.py, mode "majority"): votes of 1 are noise and set to 0; an
    image is kept when one column holds more than half of the remaining votes, and dropped when that column is
    unknown or not-a-face, or when no column has a strict majority.
    """
    v = _denoised(votes)
    total = v.sum(1)
    top = v.argmax(1)
    strict = v.max(1) * 2 > total
    keep = strict & (total > 0) & (top < len(FERPLUS_EMOTIONS))
    return np.where(keep, top, -1)


def _denoised(votes: np.ndarray) -> np.ndarray:
    """(N, 10) -> (N, 10) int64 with FER+'s outlier rule applied: a column with a single vote is set to 0."""
    v = votes.astype(np.int64)
    v[v <= 1] = 0
    return v


def ferplus_training_label(votes: np.ndarray) -> np.ndarray:
    """(N, 10) votes -> (N,) int64 FER+ 8-class label of a training image, -1 where FER+'s training drops it.

    FER+'s training keeps more than its majority-rule test sets (microsoft/FERPlus, modes "probability" and
    "crossentropy"): after the outlier rule, an image whose most-voted column is an emotion is kept with that
    emotion (ties to the first FERPLUS_COLUMNS column); unknown, not-a-face or no vote left drops it."""
    v = _denoised(votes)
    top = v.argmax(1)
    return np.where((v.sum(1) > 0) & (top < len(FERPLUS_EMOTIONS)), top, -1)


def ferplus_shares(votes: np.ndarray) -> np.ndarray:
    """(N, 10) votes -> (N, 8) float32 vote shares over FER+'s emotions (outlier rule applied, unknown and
    not-a-face dropped, renormalised); all zeros where no emotion vote is left."""
    v = _denoised(votes)[:, : len(FERPLUS_EMOTIONS)].astype(np.float32)
    total = v.sum(1, keepdims=True)
    return np.divide(v, total, out=np.zeros_like(v), where=total > 0)


def ferplus_targets(labels: np.ndarray, votes: np.ndarray, weight: float) -> np.ndarray:
    """(N,) 8-class labels, (N, 10) votes -> (N, 8) float32 (1 - weight) * one-hot + weight * FER+ shares
    (weight 1: train on the vote distribution, Barsoum et al.'s "probability" scheme)."""
    return _mix(labels, ferplus_shares(votes), weight)


def ferplus_labelled(ds: FERDataset) -> FERDataset:
    """ds relabelled with FER+'s 8 classes (FERPLUS_EMOTIONS order), as FER+'s protocol has it: PublicTest and
    PrivateTest rows by the majority rule (`ferplus_majority`, the protocol's test sets), Training rows by
    `ferplus_training_label`. Rows with unusable votes, or dropped by the rule of their usage, are left out."""
    if ds.votes is None or ds.votes_usable is None:
        raise DataError(f"{ds.source}: FER+ labels need FER+ votes joined to the data (ferkit.data.join_ferplus)")
    labels = np.where(ds.usage == "Training", ferplus_training_label(ds.votes), ferplus_majority(ds.votes))
    keep = ds.votes_usable & (labels >= 0)
    out = ds.select(keep)
    out.labels, out.classes = labels[keep].astype(np.int64), FERPLUS_EMOTIONS
    return out


def plurality_fer2013(votes: np.ndarray) -> np.ndarray:
    """(N,) int64 FER2013 class of the most-voted FER+ emotion (ties to the first FER+ column), -1 when the top
    column is contempt, unknown or not-a-face, or the row has no votes."""
    top = votes.argmax(1)
    to_fer = np.array([CLASS_NAMES.index(FERPLUS_TO_FER2013[c]) for c in FERPLUS_EMOTIONS[:-1]] + [-1, -1, -1])
    return np.where(votes.sum(1) > 0, to_fer[top], -1)


def mixed_targets(labels: np.ndarray, votes: np.ndarray, usable: np.ndarray, weight: float) -> np.ndarray:
    """(N,) labels, (N, 10) votes -> (N, 7) float32 targets (1 - weight) * one-hot + weight * FER+ shares.

    Rows whose votes are not usable (or leave no FER2013 vote) keep their plain one-hot label.
    """
    shares, has = fer2013_distribution(votes)
    return _mix(labels, shares, weight, usable & has)


def _mix(labels: np.ndarray, shares: np.ndarray, weight: float, use: np.ndarray | None = None) -> np.ndarray:
    """(N,) labels, (N, K) vote shares -> (N, K) float32 (1 - weight) * one-hot + weight * shares on the rows in
    `use` (all when None); the other rows keep their one-hot label."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the FER+ mixing weight must be in [0, 1], got {weight}")
    onehot = np.eye(shares.shape[1], dtype=np.float32)[labels]
    use = np.ones(len(labels), bool) if use is None else use
    out = onehot.copy()
    out[use] = (1 - weight) * onehot[use] + weight * shares[use]
    return out


@dataclass
class FerPlusFacts:
    usable_by_usage: dict[str, int]
    plurality_agreement: float  # share of usable rows whose FER+ plurality is their FER2013 label
    majority_counts: dict[str, dict[str, int]]  # usage -> FER+ class -> images kept by the majority rule
    majority_dropped: dict[str, int]


def ferplus_facts(ds: FERDataset) -> FerPlusFacts:
    """The facts `ferkit data info` prints for a dataset joined with FER+ votes."""
    if ds.votes is None or ds.votes_usable is None:
        raise ValueError("this dataset carries no FER+ votes (join them with ferkit.data.join_ferplus)")
    usable = ds.votes_usable
    plural = plurality_fer2013(ds.votes)
    labeled = usable & (ds.labels >= 0)
    major = ferplus_majority(ds.votes)
    counts, dropped = {}, {}
    for u in ds.usage_names():
        part = (ds.usage == u) & usable
        kept = major[part]
        counts[u] = {c: int((kept == i).sum()) for i, c in enumerate(FERPLUS_EMOTIONS)}
        dropped[u] = int((kept < 0).sum())
    return FerPlusFacts(
        usable_by_usage={u: int((usable & (ds.usage == u)).sum()) for u in ds.usage_names()},
        plurality_agreement=float((plural[labeled] == ds.labels[labeled]).mean()) if labeled.any() else 0.0,
        majority_counts=counts,
        majority_dropped=dropped,
    )


def is_ferplus_folder(root: Path) -> bool:
    return any((root / d).is_dir() for d in _FOLDER_USAGE)


def read_ferplus_folder(root: str | Path, on_error: str = "raise") -> FERDataset:
    """FER+'s image folders: FER2013Train/, FER2013Valid/, FER2013Test/ with ferNNNNNNN.png and the votes in each
    folder's label.csv (`name,box,10 votes`) or in a fer2013new.csv beside the folders.

    FER2013's own labels are not in these folders: labels are -1 and the votes are attached (train on them, or
    join FER2013 labels from fer2013.csv). origin is the number in the file name.
    """
    from ferkit.data.folder_reader import load_face

    root = Path(root)
    by_name = _votes_by_name(root / FERPLUS_FILE) if (root / FERPLUS_FILE).is_file() else {}
    images, votes, usage, origin, skipped = [], [], [], [], []
    from ferkit.data.dataset import SkippedRow

    for folder, use in _FOLDER_USAGE.items():
        part = root / folder
        if not part.is_dir():
            continue
        table = _votes_from_label_csv(part / "label.csv") if (part / "label.csv").is_file() else by_name
        for f in sorted(part.glob("fer*.png")):
            face = load_face(f)
            problem = face if isinstance(face, str) else None
            if problem is None and f.name not in table:
                problem = "no votes for this image in label.csv or fer2013new.csv"
            if problem is not None:
                if on_error == "raise":
                    raise DataError(f"{f}: {problem}")
                skipped.append(SkippedRow(str(f), problem))
                continue
            images.append(face)
            votes.append(table[f.name])
            usage.append(use)
            origin.append(int(f.stem.removeprefix("fer")))
    if not images:
        raise DataError(f"{root}: no FER+ images under FER2013Train/, FER2013Valid/ or FER2013Test/")
    v = np.array(votes, dtype=np.uint8)
    return FERDataset(
        images=np.stack(images),
        labels=np.full(len(images), -1, np.int64),
        usage=np.array(usage, dtype="<U11"),
        origin=np.array(origin, dtype=np.int64),
        source=root.name,
        layout="ferplus-folder",
        skipped=skipped,
        votes=v,
        votes_usable=v.sum(1) > 0,
    )


def _votes_by_name(path: Path) -> dict[str, list[int]]:
    fp = read_ferplus(path)
    usable = fp.usable()
    return {n: fp.votes[i].tolist() for i, n in enumerate(fp.names) if usable[i]}


def _votes_from_label_csv(path: Path) -> dict[str, list[int]]:
    """FER+'s per-folder label.csv: `fer0000000.png,"(0, 0, 48, 48)",4,0,0,1,3,2,0,0,0,0` (no header)."""
    table = {}
    with path.open(newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if len(row) != 12:
                raise DataError(f"{path}, line {lineno}: expected name, box and 10 vote counts, got {row[:12]!r}")
            try:
                table[row[0].strip()] = [int(v) for v in row[2:]]
            except ValueError:
                raise DataError(f"{path}, line {lineno}: vote counts must be integers, got {row[2:]!r}") from None
    return table


def ferplus_facts_for(ds: FERDataset, path: str | Path | None = None) -> tuple[FerPlusFacts | None, str]:
    """(facts, "") when FER+ votes are found and belong to ds, else (None, why not): `ferkit data info` reports
    either, and never fails for want of the optional votes."""
    from ferkit.errors import DataError, DataNotFoundError

    try:
        joined = with_votes(ds, path)
    except DataNotFoundError:
        return None, "not found (--ferplus PATH or FERKIT_FERPLUS)"
    except DataError as e:
        return None, str(e)
    return ferplus_facts(joined), ""
