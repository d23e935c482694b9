"""Do two committed runs err alike? Pairwise disagreement on PublicTest; no other split is read.

python benchmarks/probe_disagreement.py results/runs/* --ref results/runs/A [results/runs/B ...] [--tta]
    [--committee NAME results/runs/C results/runs/D ...]   # repeatable

An ensemble gains only where its members disagree: two runs that predict the same class on nearly every image
add nothing to each other, however accurate each is. For every run and every reference run this prints, on
PublicTest: the share of images on which their predicted classes differ, and the share of the reference's errors
that the run gets right (what it could correct in an ensemble). Two seeds of one recipe give the floor to read
the rest against. A committee (the mean probability of the runs it names, as a teacher set is distilled from)
enters as one more row and one more reference, "committee:NAME".
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.predictions import ensemble_logits, load_runs


def pair_figures(pred: np.ndarray, ref: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(share of images where the two predictions differ, share of ref's errors that pred gets right)."""
    ref_wrong = ref != labels
    return float((pred != ref).mean()), float((pred[ref_wrong] == labels[ref_wrong]).mean())


def short_labels(names: list[str]) -> dict[str, str]:
    """Each name's shortest tail of "-"-separated parts that no other name shares ("s191", "s92-h200")."""
    for k in range(1, max(len(n.split("-")) for n in names) + 1):
        tails = {n: "-".join(n.split("-")[-k:]) for n in names}
        if len(set(tails.values())) == len(names):
            return tails
    return {n: n for n in names}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--ref", nargs="+", required=True, help="reference runs (each also given among the runs)")
    p.add_argument("--tta", action="store_true")
    p.add_argument(
        "--committee",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "RUN"),
        help="a name, then the runs whose mean probability is one more row and reference",
    )
    p.add_argument("--data", default=None)
    args = p.parse_args()
    for c in args.committee:  # the names become column labels and part of the JSON's file name
        if len(c) < 2 or not re.fullmatch(r"[A-Za-z0-9_.-]+", c[0]):
            p.error(f"--committee {' '.join(c)!r}: give a name of letters, digits, '_', '.', '-', then its runs")
    if len({c[0] for c in args.committee}) != len(args.committee):
        p.error("--committee names repeat")
    members = {c[0]: c[1:] for c in args.committee}  # committee name -> run paths
    paths = sorted(set(args.runs) | set(args.ref) | {m for ms in members.values() for m in ms})
    runs, splits, _ = load_runs(paths, args.data)
    labels = splits.val.labels  # PublicTest
    name_of = {path: r.name for path, r in zip(paths, runs, strict=True)}  # a run folder or its .npz -> run name
    logits = {r.name: r.split("PublicTest", args.tta) for r in runs}  # name -> (3589, 7)
    preds = {name_of[r]: logits[name_of[r]].argmax(1) for r in [*args.runs, *args.ref]}  # name -> (3589,)
    for name, ms in members.items():
        preds[f"committee:{name}"] = ensemble_logits([logits[name_of[m]] for m in ms]).argmax(1)
    ref_names = list(dict.fromkeys(name_of[r] for r in args.ref))
    refs = short_labels(ref_names) | {f"committee:{n}": n for n in members}  # name -> column label
    rows = []
    for name, pred in sorted(preds.items(), key=lambda kv: -float((kv[1] == labels).mean())):
        row: dict = {"run": name, "PublicTest": float((pred == labels).mean())}
        for ref, label in refs.items():  # a run against itself: differs 0, fixes 0
            row[f"differs from {label}"], row[f"fixes {label}"] = pair_figures(pred, preds[ref], labels)
        rows.append(row)
    extra = {"refs": list(refs), "committees": {n: [name_of[m] for m in ms] for n, ms in members.items()}}
    tag = f"_{'_'.join(members)}" if members else ""
    report(f"disagreement_{len(preds) - len(members)}runs{tag}{'_tta' if args.tta else ''}", rows, extra)


if __name__ == "__main__":
    main()
