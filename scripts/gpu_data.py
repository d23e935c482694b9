"""Carry FER2013 to the GPU machine of the `device` tool, losslessly, in parts that fit its 64 MiB per call.

The csv.gz is 95 MB and the tree already takes 19 MB of a call; lossless WebP mosaics bring the 35,887 faces to
about 51 MB, sent as two parts in two back-to-back calls (the machine keeps /tmp while warm).

Here:    python scripts/gpu_data.py pack --parts 2 --out .gpu           (.gpu is in .git/info/exclude)
There:   python3 scripts/gpu_data.py unpack .gpu/part1 [...] --csv /tmp/fer/fer2013.csv
Unpacking checks the SHA-256 of every part's faces and labels and writes the Kaggle layout (emotion,pixels,Usage),
which ferkit reads as it reads the original. Needs only numpy and OpenCV, so it runs without ferkit installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

USAGES = ("Training", "PublicTest", "PrivateTest")
TILE, PER_MOSAIC, COLUMNS = 48, 1000, 50  # a mosaic: 1000 faces in 20 rows of 50 (960 x 2400 px)


def _digest(images: np.ndarray, labels: np.ndarray, usage: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes() + labels.astype(np.int8).tobytes() + usage.tobytes()).hexdigest()


def _mosaic(faces: np.ndarray) -> np.ndarray:
    """(n <= 1000, 48, 48) -> (rows * 48, 50 * 48), padded with black faces."""
    n = len(faces)
    rows = -(-n // COLUMNS)
    padded = np.zeros((rows * COLUMNS, TILE, TILE), np.uint8)
    padded[:n] = faces
    return padded.reshape(rows, COLUMNS, TILE, TILE).transpose(0, 2, 1, 3).reshape(rows * TILE, COLUMNS * TILE)


def _faces(mosaic: np.ndarray, n: int) -> np.ndarray:
    rows = mosaic.shape[0] // TILE
    return mosaic.reshape(rows, TILE, COLUMNS, TILE).transpose(0, 2, 1, 3).reshape(-1, TILE, TILE)[:n]


def pack(
    images: np.ndarray, labels: np.ndarray, usage: np.ndarray, out: Path, parts: int, source: dict | None = None
) -> list[Path]:
    """images (N, 48, 48) uint8, labels (N,) in 0..6, usage (N,) uint8 index into USAGES -> out/part1..partK.
    source: the packed file's identity ({"file", "sha256"}, ferkit.data.source.data_identity), kept in every
    manifest so that `retarget` can re-address prediction files between that file and the unpacked copy."""
    written = []
    for k, idx in enumerate(np.array_split(np.arange(len(images)), parts), start=1):
        part = out / f"part{k}"
        part.mkdir(parents=True, exist_ok=True)
        for j, start in enumerate(range(0, len(idx), PER_MOSAIC)):
            faces = images[idx[start : start + PER_MOSAIC]]
            ok, buf = cv2.imencode(".webp", _mosaic(faces), [cv2.IMWRITE_WEBP_QUALITY, 101])  # 101: lossless
            if not ok or not np.array_equal(_faces(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE), len(faces)), faces):
                raise RuntimeError(f"lossless WebP failed to round-trip faces {start}..{start + len(faces)}")
            (part / f"faces-{j:03d}.webp").write_bytes(buf.tobytes())
        np.savez(part / "rows.npz", labels=labels[idx].astype(np.int8), usage=usage[idx], index=idx)
        sha = _digest(images[idx], labels[idx], usage[idx])
        (part / "manifest.json").write_text(
            json.dumps(
                {"part": k, "of": parts, "rows": len(idx), "total": len(images), "sha256": sha, "source": source}
            )
        )
        written.append(part)
    return written


def unpack(parts: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parts back as (images, labels, usage) in the original row order; every part's digest is checked."""
    chunks, totals = [], set()
    for part in parts:
        manifest = json.loads((part / "manifest.json").read_text())
        rows = np.load(part / "rows.npz")
        mosaics = sorted(part.glob("faces-*.webp"))
        faces = [cv2.imdecode(np.fromfile(m, np.uint8), cv2.IMREAD_GRAYSCALE) for m in mosaics]
        images = np.concatenate([_faces(m, PER_MOSAIC) for m in faces])[: manifest["rows"]]
        if len(images) != manifest["rows"] or _digest(images, rows["labels"], rows["usage"]) != manifest["sha256"]:
            raise ValueError(f"{part}: its faces do not match its manifest (damaged or incomplete transfer)")
        chunks.append((rows["index"], images, rows["labels"], rows["usage"]))
        totals.add(manifest["total"])
    index = np.concatenate([c[0] for c in chunks])
    order = np.argsort(index)
    if len(totals) != 1 or not np.array_equal(index[order], np.arange(totals.pop())):
        raise ValueError(
            f"these {len(parts)} parts are not one whole pack (a part missing or twice): pass every part once"
        )
    return tuple(np.concatenate([c[i] for c in chunks])[order] for i in (1, 2, 3))


def write_csv(images: np.ndarray, labels: np.ndarray, usage: np.ndarray, path: Path) -> None:
    """The Kaggle layout: emotion,pixels,Usage."""
    path.parent.mkdir(parents=True, exist_ok=True)
    numbers = np.array([str(i) for i in range(256)], dtype=object)
    with path.open("w") as f:
        f.write("emotion,pixels,Usage\n")
        for img, label, u in zip(images, labels, usage, strict=True):
            f.write(f"{label},{' '.join(numbers[img.ravel()])},{USAGES[u]}\n")


def retarget(runs: list[Path], parts: list[Path], csv: Path, out: Path) -> list[Path]:
    """Prediction files (ferkit.predictions) re-addressed between the packed file and its unpacked copy.

    A prediction file names the data file's sha256, and ferkit refuses one made on another file (its rows would not
    line up). The unpacked CSV holds the same faces, labels and usages in the same order as the packed file, but
    not its bytes. This checks that (every part's digest against `csv` as ferkit reads it), then copies each run to
    out/<run> naming the other file: the packed file's runs name the copy (teachers for distilling there), the
    copy's runs name the packed file (prediction files made there, brought back). Any other run is refused."""
    import shutil

    from ferkit.data import read_csv
    from ferkit.data.source import data_identity

    manifests = [json.loads((p / "manifest.json").read_text()) for p in parts]
    sources = {json.dumps(m.get("source"), sort_keys=True) for m in manifests}
    source = manifests[0].get("source")
    if len(sources) != 1 or not source:
        raise ValueError("the parts do not name one packed file (pack them again with this script)")
    ds = read_csv(csv)
    codes = np.array([USAGES.index(u) for u in ds.usage], np.uint8)
    for part, m in zip(parts, manifests, strict=True):
        idx = np.load(part / "rows.npz")["index"]
        if m["total"] != len(ds.images) or _digest(ds.images[idx], ds.labels[idx], codes[idx]) != m["sha256"]:
            raise ValueError(f"{csv}: does not hold the faces of {part} (not its unpacked copy)")
    copy = data_identity(csv)
    swap = {source["sha256"]: copy, copy["sha256"]: source}
    written = []
    for run in runs:
        info = json.loads((run / "run.json").read_text())
        new = swap.get(info.get("data_sha256"))
        if new is None:
            raise ValueError(f"{run}: predicts data sha256 {str(info.get('data_sha256'))[:16]}…, neither file's")
        old = info["data_sha256"]
        info |= {
            "data": new["file"],
            "data_sha256": new["sha256"],
            "data_sha256_via": f"scripts/gpu_data.py retarget from {old[:16]}…: the same faces, labels and usages "
            f"in the same order (part digests {', '.join(m['sha256'][:16] + '…' for m in manifests)})",
        }
        (out / run.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "predictions.npz", out / run.name / "predictions.npz")
        (out / run.name / "run.json").write_text(json.dumps(info, indent=2) + "\n")
        written.append(out / run.name)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="FER2013 (found as ferkit finds it) -> lossless parts")
    pk.add_argument("--data", default=None, help="FER2013 file or folder (default: FERKIT_DATA, ../shared/...)")
    pk.add_argument("--parts", type=int, default=2)
    pk.add_argument("--out", type=Path, default=Path(".gpu"))
    up = sub.add_parser("unpack", help="parts -> a Kaggle-layout fer2013.csv")
    up.add_argument("parts", type=Path, nargs="+")
    up.add_argument("--csv", type=Path, required=True)
    rt = sub.add_parser("retarget", help="prediction files re-addressed between the packed file and its copy")
    rt.add_argument("runs", type=Path, nargs="+", help="run folders (predictions.npz, run.json)")
    rt.add_argument("--parts", type=Path, nargs="+", required=True)
    rt.add_argument("--csv", type=Path, required=True, help="the unpacked copy")
    rt.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.cmd == "pack":
        from ferkit.data import load_fer2013, locate
        from ferkit.data.source import data_identity

        source = locate(args.data)
        ds = load_fer2013(source)
        usage = np.array([USAGES.index(u) for u in ds.usage], np.uint8)
        identity = {k: data_identity(source)[k] for k in ("file", "sha256")}
        for part in pack(ds.images, ds.labels, usage, args.out, args.parts, identity):
            size = sum(f.stat().st_size for f in part.iterdir())
            print(f"{part}: {size / 2**20:.1f} MiB")
    elif args.cmd == "retarget":
        for run in retarget(args.runs, args.parts, args.csv, args.out):
            print(f"{run}: re-addressed")
    else:
        images, labels, usage = unpack(args.parts)
        write_csv(images, labels, usage, args.csv)
        print(f"{args.csv}: {len(images)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
