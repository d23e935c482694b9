"""How much could any combination of these members fix? The CV rule's errors on PublicTest, by how many members
get each one right; no other split is read.

python benchmarks/probe_ensemble_headroom.py results/runs/* [--tta] [--candidate results/runs/NEW ...]

The ensemble is the one `ferkit ensemble --select cv` builds (cv_select on PublicTest). An image that almost no
member gets right cannot be fixed by weighting or ranking the same members differently; only a member that errs
otherwise can. The table counts the ensemble's PublicTest errors (and, beside them, its right answers that most
members get wrong) in bands of the share of members that predict the image's label. A `--candidate` run is left
out of the ensemble and gets a column: how many of the ensemble's errors in each band it gets right, the question a
new member of another kind is asked before it joins.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.predictions import cv_select, ensemble_logits, load_runs

BANDS = [(0.0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 1.0)]  # share of members right: [lo, hi), the last closed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--tta", action="store_true")
    p.add_argument("--candidate", nargs="+", default=[], help="runs kept out of the ensemble, scored on its errors")
    p.add_argument("--data", default=None)
    args = p.parse_args()
    runs, splits, _ = load_runs(args.runs, args.data)
    labels = splits.val.labels  # PublicTest
    logits = {r.name: r.split("PublicTest", args.tta) for r in runs}  # name -> (3589, 7)
    outside = {Path(c).name for c in args.candidate}
    if missing := outside - set(logits):
        p.error(f"--candidate {sorted(missing)} not among the runs given")
    candidates = {n: logits.pop(n).argmax(1) == labels for n in sorted(outside)}  # name -> (3589,) right
    if not logits:
        p.error("--candidate names every run given; none is left for the ensemble")
    choice = cv_select(logits, labels)
    members = list(choice.weights)
    weights = [float(choice.weights[n]) for n in members]  # greedy may choose a run twice; top-k weighs all 1
    right = ensemble_logits([logits[n] for n in members], weights).argmax(1) == labels  # (3589,)
    share = np.mean([logits[n].argmax(1) == labels for n in members], axis=0)  # (3589,) members right
    rows = []
    for lo, hi in BANDS:
        band = (share >= lo) & ((share < hi) if hi < 1.0 else (share <= hi))
        row = {
            "members right": f"{lo:.0%}-{hi:.0%}",
            "ensemble wrong": int((~right & band).sum()),
            "ensemble right": int((right & band).sum()),
        }
        for n, c in candidates.items():  # of the ensemble's errors in this band, how many the candidate fixes
            row[f"{n} right of those wrong"] = int((~right & band & c).sum())
        rows.append(row)
    extra = {"rule": choice.rule, "members": members, "PublicTest": float(right.mean())}
    if candidates:  # without them the JSON stays as the probe wrote it before the option
        extra["candidates"] = list(candidates)
    print(f"{choice.rule} over {len(logits)} runs: PublicTest {right.mean():.4f}, {int((~right).sum())} errors")
    tag = f"_vs_{len(candidates)}runs" if len(candidates) > 1 else "".join(f"_vs_{n}" for n in candidates)
    report(f"ensemble_headroom_{len(logits)}runs{'_tta' if args.tta else ''}{tag}", rows, extra)


if __name__ == "__main__":
    main()
