"""Reader for the image-folder copy of FER2013: train/<class>/*.jpg and test/<class>/*.jpg."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ferkit.data.dataset import IMAGE_SIZE, USAGES, FERDataset, SkippedRow
from ferkit.errors import DataError
from ferkit.labels import name_to_label
from ferkit.progress import progress

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
_FOLDER_USAGE = {"train": "Training", "test": "Test"}


def is_image_folder(root: Path) -> bool:
    """True when root holds train/ or test/ with class folders inside."""
    return any((root / part).is_dir() and _class_dirs(root / part) for part in _FOLDER_USAGE)


def _class_dirs(part: Path) -> list[tuple[int, Path]]:
    found = []
    for d in sorted(p for p in part.iterdir() if p.is_dir()):
        try:
            found.append((name_to_label(d.name), d))
        except ValueError:
            continue
    return found


def _usage_of(path: Path, part: str) -> str:
    """The split given by a Training_/PublicTest_/PrivateTest_ prefix, else by the folder."""
    prefix = path.name.split("_", 1)[0]
    return prefix if prefix in USAGES else _FOLDER_USAGE[part]


def list_image_files(root: Path, left_out: list[SkippedRow] | None = None) -> list[tuple[Path, int, str]]:
    """(file, label, usage) for every image, in a stable order: train then test, class, name.

    What is not read is counted in left_out, with the reason: folders that name no class, folders nested in a class
    folder, dangling or looping links, files that are not images."""
    files = []
    note = left_out.append if left_out is not None else (lambda s: None)
    for part in _FOLDER_USAGE:
        if not (root / part).is_dir():
            continue
        known = {d for _, d in _class_dirs(root / part)}
        for d in sorted(p for p in (root / part).iterdir() if p.is_dir() and p not in known):
            note(
                SkippedRow(
                    str(d), "folder names no FER2013 class (angry, disgust, fear, happy, sad, surprise, neutral)"
                )
            )
        for label, d in _class_dirs(root / part):
            for f in sorted(d.iterdir()):
                if f.name.startswith("."):
                    continue
                if f.is_symlink() and not f.exists():
                    note(SkippedRow(str(f), "dangling or looping link"))
                elif f.is_dir():
                    note(SkippedRow(str(f), "folder nested in a class folder (not searched)"))
                elif f.suffix.lower() not in IMAGE_EXTENSIONS:
                    note(SkippedRow(str(f), f"not an image file ({f.suffix or 'no extension'})"))
                elif f.is_file():
                    files.append((f, label, _usage_of(f, part)))
    return files


def load_face(path: Path) -> np.ndarray | str:
    """(48, 48) uint8, or the reason the file is not a usable face image."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        return f"cannot read file ({e})"
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        return "not a readable image"
    h, w = image.shape[:2]
    if h != w or h < IMAGE_SIZE:
        return f"odd-sized image {w}x{h} (expected square, at least {IMAGE_SIZE}x{IMAGE_SIZE})"
    if h != IMAGE_SIZE:
        # INTER_AREA averages the source pixels: the right filter for shrinking the 224 px copy.
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return image


def read_folder(root: str | Path, on_error: str = "raise") -> FERDataset:
    """Read the image-folder layout; bad files raise DataError naming them, or are skipped and recorded."""
    root = Path(root)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    left_out: list[SkippedRow] = []
    files = list_image_files(root, left_out)
    if not files:
        raise DataError(f"{root}: no images found under train/<class>/ or test/<class>/")
    faces: list[np.ndarray | str] = []
    # cv2 releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool, progress("reading images", len(files)) as adv:
        for face in pool.map(load_face, (f for f, _, _ in files), chunksize=64):
            faces.append(face)
            adv()
    keep, skipped = [], list(left_out)
    for i, ((path, _, _), face) in enumerate(zip(files, faces, strict=True)):
        if isinstance(face, str):
            if on_error == "raise":
                raise DataError(f"{path}: {face}")
            skipped.append(SkippedRow(str(path), face))
        else:
            keep.append(i)
    if not keep:
        raise DataError(f"{root}: no readable images ({len(skipped)} skipped)")
    return FERDataset(
        images=np.stack([faces[i] for i in keep]),
        labels=np.array([files[i][1] for i in keep], dtype=np.int64),
        usage=np.array([files[i][2] for i in keep], dtype="<U11"),
        origin=np.array(keep, dtype=np.int64),
        source=str(root),
        layout="folder",
        skipped=skipped,
    )
