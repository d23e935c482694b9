"""Phone files (.tflite) timed side by side in one run: batch-1 latency through LiteRT, as a phone runs them.

python benchmarks/bench_phone_files.py A.int8.tflite B.int8.tflite [--faces 200] [--rounds 3] [--threads 2]

Latency moves with the host and its load, so a figure from another session cannot be compared with today's; this
times every file given in the same process, in interleaved rounds (A, B, A, B, ...), on the same random faces, and
reports each file's median over the rounds' medians and its ratio to the first file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import batch1_ms, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--faces", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if min(args.faces, args.rounds, args.threads) < 1:
        sys.exit("bench_phone_files: --faces, --rounds and --threads must be at least 1")
    if len(set(args.files)) < len(args.files):
        sys.exit("bench_phone_files: a file is named twice; each row must be a different file")
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        sys.exit(f"bench_phone_files: no such file: {', '.join(missing)}")
    from ferkit.export.tflite_runtime import TFLiteModel

    faces = np.random.default_rng(0).integers(0, 256, (args.faces, 48, 48), dtype=np.uint8)
    models = {f: TFLiteModel(f, threads=args.threads) for f in args.files}
    rounds: dict[Path, list[float]] = {f: [] for f in args.files}
    for _ in range(args.rounds):
        for f, m in models.items():
            rounds[f].append(statistics.median(batch1_ms(m.logits, faces, runs=len(faces))))
    first = statistics.median(rounds[args.files[0]])
    rows = [
        {
            "file": str(f),
            "MB": f.stat().st_size / 2**20,
            "ms per face (median of rounds)": statistics.median(r),
            "rounds' medians": " ".join(f"{v:.3f}" for v in r),
            "ratio to the first": statistics.median(r) / first,
        }
        for f, r in rounds.items()
    ]
    report("phone_files", rows, {"faces": args.faces, "rounds": args.rounds, "threads": args.threads})


if __name__ == "__main__":
    main()
