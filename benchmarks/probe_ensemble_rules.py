"""Would another way of combining the top-k runs beat the probability mean? Cross-validated inside PublicTest only.

python benchmarks/probe_ensemble_rules.py results/runs/* [--tta] [--repeats 20]

The committed rule (`ferkit.predictions.cv_select`) ranks the runs by accuracy on one half of PublicTest and scores
the equal-weight mean of the k best runs' probabilities on the other half, both ways, `repeats` times from seed 0;
the k with the best mean held-out accuracy wins. Each family here changes one thing and keeps that protocol and
those halves, so the families are compared on the same 2 x repeats held-out halves:

- `mean p` -- the committed rule, the reference;
- `mean log p` -- the mean of log-probabilities (a geometric mean: a member sure of a class cannot outvote the
  rest alone; equal to averaging logits after each member's own normalisation);
- `mean p, T=0.5` / `mean p, T=2` -- each member's logits divided by T before its softmax (T < 1 lets confident
  members weigh more, T > 1 less);
- `mean p, NLL rank` -- members ranked by their mean negative log-likelihood on the fitting half instead of their
  accuracy (a smoother ranking: accuracy on 1,794 images ties and jitters).

For each family: the best k's mean held-out accuracy (the figure cv_select maximises) and its gain over `mean p`'s,
with the sd of the paired per-half difference at the two best k. No other split is read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.predictions import half_splits, load_runs, log_softmax, ranked_runs

Ranker = Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], list[str]]


def nll_ranked(probs: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray) -> list[str]:
    """Run names by mean NLL on `rows`, best first (ties: name order)."""

    def nll(n: str) -> float:
        return float(-np.log(np.clip(probs[n][rows, labels[rows]], 1e-12, None)).mean())

    return sorted(probs, key=lambda n: (nll(n), n))


# family -> (member transform: (n, 7) logits -> what is averaged, the ranking on the fitting half)
FAMILIES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Ranker]] = {
    "mean p": (lambda z: np.exp(log_softmax(z)), ranked_runs),
    "mean log p": (log_softmax, ranked_runs),
    "mean p, T=0.5": (lambda z: np.exp(log_softmax(z / 0.5)), ranked_runs),
    "mean p, T=2": (lambda z: np.exp(log_softmax(z / 2.0)), ranked_runs),
    "mean p, NLL rank": (lambda z: np.exp(log_softmax(z)), nll_ranked),
}


def held_out(
    logits: dict[str, np.ndarray], probs: dict[str, np.ndarray], labels: np.ndarray, family: str, repeats: int
) -> np.ndarray:
    """(2 * repeats, n_runs) held-out accuracy of the top-k mean, k = 1..n_runs, on each of cv_select's halves.
    The ranking always reads `probs` (each run's softmax); only what is averaged follows the family."""
    transform, rank = FAMILIES[family]
    members = {n: transform(z) for n, z in logits.items()}
    out = []
    for fit, held in half_splits(len(labels), repeats, seed=0):
        total, row = np.zeros_like(next(iter(members.values()))[held]), []
        for name in rank(probs, labels, fit):
            total = total + members[name][held]
            row.append(float((total.argmax(1) == labels[held]).mean()))
        out.append(row)
    return np.array(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--tta", action="store_true")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--data", default=None)
    args = p.parse_args()
    runs, splits, _ = load_runs(args.runs, args.data)
    logits = {r.name: r.split("PublicTest", args.tta).astype(np.float64) for r in runs}
    labels = splits.val.labels
    probs = {n: np.exp(log_softmax(z)) for n, z in logits.items()}  # made once, read by every family's ranking
    acc = {f: held_out(logits, probs, labels, f, args.repeats) for f in FAMILIES}  # family -> (halves, k)
    ref = acc["mean p"][:, int(acc["mean p"].mean(0).argmax())]
    rows = []
    for family, a in acc.items():
        k = int(a.mean(0).argmax())
        diff = a[:, k] - ref
        rows.append(
            {
                "family": family,
                "best k": k + 1,
                "held-out acc": float(a[:, k].mean()),
                "gain": float(diff.mean()),
                "gain sd": float(diff.std()),
            }
        )
    curves = {f: a.mean(0).tolist() for f, a in acc.items()}
    name = f"ensemble_rules_{len(logits)}runs{'_tta' if args.tta else ''}"
    report(name, rows, {"runs": sorted(logits), "held_out_by_k": curves})


if __name__ == "__main__":
    main()
