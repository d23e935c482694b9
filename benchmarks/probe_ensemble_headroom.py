"""How much could any combination of these members fix? The CV rule's errors on PublicTest, by how many members
get each one right; no other split is read.

python benchmarks/probe_ensemble_headroom.py results/runs/* [--tta] [--candidate results/runs/NEW ...]

The ensemble is the one `ferkit ensemble --select cv` builds (cv_select on PublicTest). An image that almost no
member gets right cannot be fixed by weighting or ranking the same members differently; only a member that errs
otherwise can. The table counts the ensemble's PublicTest errors (and, beside them, its right answers that most
members get wrong) in bands of the share of members that predict the image's label. A `--candidate` run is left
out of the ensemble and gets a column: how many of the ensemble's errors in each band it gets right, the question a
new member of another kind is asked before it joins. `--ferplus` adds, for the ensemble's errors in each band, how
many images FER+'s crowd (ten votes an image; the most-voted FER2013 emotion) labels otherwise than FER2013 does, and
how many it labels as the ensemble predicts: how much of an unfixable band is a disputed label rather than a miss.
The votes are read for PublicTest only and choose nothing. `--members` adds a second table, one row a run (members,
runs the rule left out, candidates): its PublicTest accuracy and how many of the ensemble's errors it gets right, in
all and on the PublicTest images that also appear in Training (so a fix by memorised duplicates shows). A member's
count includes its own vote in the ensemble, which lowers it against a run outside.
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
    p.add_argument(
        "--ferplus",
        nargs="?",
        const="",
        default=None,
        metavar="CSV",
        help="add FER+'s crowd labels (fer2013new.csv; no value: found as ferkit finds it)",
    )
    p.add_argument("--members", action="store_true", help="a row a run: how many of the ensemble's errors it fixes")
    args = p.parse_args()
    runs, splits, _ = load_runs(args.runs, args.data)
    labels = splits.val.labels  # PublicTest
    logits = {r.name: r.split("PublicTest", args.tta) for r in runs}  # name -> (3589, 7)
    hits = {n: z.argmax(1) == labels for n, z in logits.items()}  # name -> (3589,) right; candidates too
    outside = {Path(c).name for c in args.candidate}
    if missing := outside - set(logits):
        p.error(f"--candidate {sorted(missing)} not among the runs given")
    candidates = {n: hits[n] for n in sorted(outside)}
    for n in outside:
        del logits[n]
    if not logits:
        p.error("--candidate names every run given; none is left for the ensemble")
    choice = cv_select(logits, labels)
    members = list(choice.weights)
    weights = [float(choice.weights[n]) for n in members]  # greedy may choose a run twice; top-k weighs all 1
    predicted = ensemble_logits([logits[n] for n in members], weights).argmax(1)  # (3589,)
    right = predicted == labels  # (3589,)
    share = np.mean([hits[n] for n in members], axis=0)  # (3589,) members right
    crowd = None if args.ferplus is None else crowd_labels(args.data, args.ferplus or None, labels)  # (3589,)
    disputed = None if crowd is None else (crowd >= 0) & (crowd != labels)  # (3589,) the crowd says otherwise
    rows = []
    for lo, hi in BANDS:
        band = (share >= lo) & ((share < hi) if hi < 1.0 else (share <= hi))
        row = {
            "members right": f"{lo:.0%}-{hi:.0%}",
            "ensemble wrong": int((~right & band).sum()),
            "ensemble right": int((right & band).sum()),
        }
        if disputed is not None:  # of the ensemble's errors in this band: the crowd's label against FER2013's
            wrong = ~right & band
            row["crowd disputes the label"] = int((wrong & disputed).sum())
            row["crowd agrees with the ensemble"] = int((wrong & (crowd == predicted)).sum())
            row["no crowd label"] = int((wrong & (crowd < 0)).sum())
        for n, c in candidates.items():  # of the ensemble's errors in this band, how many the candidate fixes
            row[f"{n} right of those wrong"] = int((~right & band & c).sum())
        rows.append(row)
    extra = {"rule": choice.rule, "members": members, "PublicTest": float(right.mean())}
    if disputed is not None:  # the base rate the bands are read against
        extra["crowd disputes the label"] = {
            "all": int(disputed.sum()),
            "ensemble right": int((disputed & right).sum()),
        }
        print(f"FER+'s crowd disputes FER2013's label on {int(disputed.sum())} of {len(labels)} PublicTest images")
    if candidates:  # without them the JSON stays as the probe wrote it before the option
        extra["candidates"] = list(candidates)
    print(f"{choice.rule} over {len(logits)} runs: PublicTest {right.mean():.4f}, {int((~right).sum())} errors")
    tag = f"_vs_{len(candidates)}runs" if len(candidates) > 1 else "".join(f"_vs_{n}" for n in candidates)
    tag += "_ferplus" if crowd is not None else ""
    name = f"ensemble_headroom_{len(logits)}runs{'_tta' if args.tta else ''}{tag}"
    report(name, rows, extra)
    if args.members:
        from ferkit.data.quality import unseen_mask

        seen = ~unseen_mask(splits.val.images, splits.train.images)  # (3589,) also in Training
        print(f"the ensemble errs on {int((~right & seen).sum())} of the {int(seen.sum())} images also in Training")
        report(f"{name}_members", member_rows(hits, right, seen, members, candidates), extra)


def member_rows(
    hits: dict[str, np.ndarray],
    right: np.ndarray,
    seen: np.ndarray,
    members: list[str],
    candidates: dict[str, np.ndarray],
) -> list[dict]:
    """A row a run (`hits`: name -> (3589,) right), best PublicTest first: its accuracy, and how many of the
    ensemble's errors (`~right`) it gets right, in all and on the images also in Training (`seen`)."""
    rows = []
    for n, ok in hits.items():
        role = "candidate" if n in candidates else "member" if n in members else "left out"
        rows.append(
            {
                "run": n,
                "role": role,
                "PublicTest": round(float(ok.mean()), 4),
                "right of the errors": int((ok & ~right).sum()),
                "of them also in Training": int((ok & ~right & seen).sum()),
            }
        )
    return sorted(rows, key=lambda r: -r["PublicTest"])


def crowd_labels(data: str | None, ferplus: str | None, labels: np.ndarray) -> np.ndarray:
    """(3589,) int64: PublicTest's FER2013 class most voted by FER+'s crowd, -1 where the top vote is contempt,
    unknown or not-a-face or the votes are unusable; rows in the order of `labels` (checked)."""
    from ferkit.data import make_splits
    from ferkit.data.ferplus import load_with_ferplus, plurality_fer2013

    val = make_splits(load_with_ferplus(data, ferplus), "official").val
    if not np.array_equal(val.labels, labels):
        sys.exit("probe_ensemble_headroom: the FER+ join changed PublicTest's rows; no crowd labels")
    return np.where(val.votes_usable, plurality_fer2013(val.votes), -1)


if __name__ == "__main__":
    main()
