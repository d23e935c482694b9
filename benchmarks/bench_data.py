"""FER2013 loading speed: ferkit cold (parse), warm (cache) and the seed notebook's per-pixel loop.

python benchmarks/bench_data.py [--data PATH]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, timed

from ferkit.data import load_fer2013, locate


def notebook_loop(path: Path) -> np.ndarray:
    """The seed notebook's loader: one int() per pixel in Python."""
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    faces = []
    for row in rows:
        face = [int(pixel) for pixel in row["pixels"].split(" ")]
        faces.append(np.asarray(face).reshape(48, 48))
    return np.asarray(faces).astype("uint8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    args = ap.parse_args()
    path = locate(args.data)
    os.environ["FERKIT_CACHE"] = tempfile.mkdtemp(prefix="ferkit-bench-")
    cold, ds = timed(lambda: load_fer2013(path, use_cache=True))  # parses and writes the cache
    warm, ds2 = timed(lambda: load_fer2013(path), repeat=5)
    nb, faces = timed(lambda: notebook_loop(path))
    assert np.array_equal(faces, ds.images) and np.array_equal(ds2.images, ds.images)
    rows = [
        {"loader": "ferkit cold (parse + write cache)", "seconds": cold, "rows": len(ds), "vs notebook": nb / cold},
        {"loader": "ferkit warm (cache, best of 5)", "seconds": warm, "rows": len(ds2), "vs notebook": nb / warm},
        {"loader": "notebook per-pixel int() loop", "seconds": nb, "rows": len(faces), "vs notebook": 1.0},
    ]
    report("data_load", rows, {"source": str(path)})


if __name__ == "__main__":
    main()
