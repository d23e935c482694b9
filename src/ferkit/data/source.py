"""Where FER2013 is, which layout it has, and loading it (through the cache)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ferkit.data import cache
from ferkit.data.csv_reader import CSV_LAYOUTS, read_csv
from ferkit.data.dataset import FERDataset
from ferkit.data.folder_reader import is_image_folder, read_folder
from ferkit.errors import DataError, DataNotFoundError

KAGGLE_COMPETITION = "challenges-in-representation-learning-facial-expression-recognition-challenge"
HOW_TO_GET = (
    "FER2013 is not here. Get it from Kaggle (free account, accept the competition rules):\n"
    f"  kaggle competitions download -c {KAGGLE_COMPETITION}\n"
    "or, with Kaggle credentials in ~/.kaggle/kaggle.json:  ferkit data download\n"
    "Then point ferkit at it with --data PATH or FERKIT_DATA=PATH "
    "(a fer2013.csv[.gz], icml_face_data.csv, train.csv or an image folder with train/ and test/)."
)
# Files looked for inside a data folder, best first.
_CANDIDATE_FILES = ("fer2013.csv.gz", "fer2013.csv", "fer2013/fer2013.csv", "icml_face_data.csv", "train.csv")
LAYOUTS = (*CSV_LAYOUTS, "folder", "ferplus-folder")


def project_root() -> Path | None:
    """The source checkout holding this package (src layout), if it runs from one."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() else None


def shared_places(name: str) -> list[Path]:
    """A data set's default places: ../shared/datasets/<name> beside the checkout and the working folder, then the
    cache folder."""
    places = []
    root = project_root()
    if root is not None:
        places.append(root.parent / "shared" / "datasets" / name)
    places.append(Path.cwd().parent / "shared" / "datasets" / name)
    places.append(cache.cache_dir() / name)
    return list(dict.fromkeys(places))


def default_locations() -> list[Path]:
    """Where FER2013 is looked for when neither --data nor FERKIT_DATA says."""
    return shared_places("fer2013")


def locate(data: str | Path | None = None) -> Path:
    """The data file or folder: `data`, else $FERKIT_DATA, else the default locations."""
    explicit = data or os.environ.get("FERKIT_DATA")
    places = [Path(explicit).expanduser()] if explicit else default_locations()
    for place in places:
        found = _find_in(place)
        if found is not None:
            return found
    tried = "\n".join(f"  {p}" for p in places)
    raise DataNotFoundError(f"{HOW_TO_GET}\nLooked in:\n{tried}")


def run_data(data: str | Path | None, ckpt: dict) -> Path:
    """The data a command measures a trained run on: `data` when given, else the file the run trained on (its
    recipe's `data`), checked to still be that file when the run recorded its sha256. A run trained on another
    machine names a path that may hold something else here (a small test file, another version): that is refused
    with the fix, rather than measured."""
    if data:
        return locate(data)
    path = locate(ckpt.get("config", {}).get("data"))
    want = (ckpt.get("summary", {}).get("data") or {}).get("sha256")
    if want:
        got = data_identity(path)["sha256"]
        if got != want:
            raise DataError(
                f"{path} is not the file this run trained on (sha256 {want[:16]}…; this one is {got[:16]}…): "
                "name the data with --data"
            )
    return path


def _find_in(place: Path) -> Path | None:
    if place.is_file():
        return place
    if not place.is_dir():
        return None
    for name in _CANDIDATE_FILES:
        if (place / name).is_file():
            return place / name
    from ferkit.data.ferplus import is_ferplus_folder

    return place if is_image_folder(place) or is_ferplus_folder(place) else None


def load_fer2013(
    data: str | Path | None = None,
    layout: str | None = None,
    on_error: str = "raise",
    use_cache: bool = True,
) -> FERDataset:
    """Load FER2013 from any layout. Warm loads come from a uint8 cache in well under a second.

    train.csv is read together with a test.csv beside it (its rows unlabeled, usage "Test").
    """
    source = locate(data)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    key = layout or ("folder" if source.is_dir() else "auto")
    path = cache.cache_path(source, key, on_error) if use_cache else None
    ds = cache.load(path) if path is not None and path.exists() else None
    if ds is None:
        ds = _read(source, layout, on_error)
        if path is not None:
            cache.save(ds, path)
    return ds


def _read(source: Path, layout: str | None, on_error: str) -> FERDataset:
    from ferkit.data.ferplus import is_ferplus_folder, read_ferplus_folder

    if layout == "ferplus-folder" or (layout is None and source.is_dir() and is_ferplus_folder(source)):
        return read_ferplus_folder(source, on_error=on_error)
    if source.is_dir() or layout == "folder":
        if not source.is_dir():
            raise DataError(f"{source}: layout 'folder' needs a directory")
        return read_folder(source, on_error=on_error)
    ds = read_csv(source, layout=layout, on_error=on_error)
    companion = source.with_name("test.csv")
    if ds.layout == "train-csv" and companion.is_file():
        ds = concat([ds, read_csv(companion, layout="test-csv", on_error=on_error)])
    return ds


def concat(parts: list[FERDataset]) -> FERDataset:
    """One dataset of several (origins stay per-source)."""
    return FERDataset(
        images=np.concatenate([p.images for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        usage=np.concatenate([p.usage for p in parts]),
        origin=np.concatenate([p.origin for p in parts]),
        source=" + ".join(p.source for p in parts),
        layout=" + ".join(dict.fromkeys(p.layout for p in parts)),
        skipped=[s for p in parts for s in p.skipped],
    )


def data_identity(source: Path) -> dict:
    """FER2013 named by file name and sha256 (a folder: by its files' names and sizes)."""
    from ferkit.data.cache import source_key

    return {"dataset": "FER2013", "file": source.name, "sha256": source_key(source)}
