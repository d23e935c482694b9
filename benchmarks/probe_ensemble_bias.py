"""Would a per-class bias on the ensemble help? Cross-validated inside PublicTest; no other split is read.

python benchmarks/probe_ensemble_bias.py results/runs/* [--tta] [--k 10 20 29] [--repeats 20]

The committed ensemble is the equal-weight mean of the k runs best on PublicTest. A prior correction -- seven
offsets added to its log-probabilities, fitted by maximum likelihood (the intercepts of a multinomial logistic
regression whose slopes are fixed at 1) -- is the cheapest way to learn anything more from PublicTest. Protocol as
`ferkit.predictions.cv_select`: a random half of PublicTest ranks the runs and fits the offsets, the other half
scores the top-k mean with and without them, both ways, `repeats` times from seed 0. A negative gain means the
offsets learn the fitting half's noise, not a shift between Training's class balance and the test sets'.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.predictions import half_splits, load_runs, log_softmax, ranked_runs


def fit_bias(logp: np.ndarray, labels: np.ndarray, steps: int = 300) -> np.ndarray:
    """(n, 7) log-probabilities -> (7,) offsets maximising the mean log-likelihood (convex; gradient descent)."""
    b, target = np.zeros(logp.shape[1]), np.bincount(labels, minlength=logp.shape[1]) / len(labels)
    for _ in range(steps):
        # the gradient of the mean NLL in b is the mean predicted distribution minus the label frequencies
        b -= logp.shape[1] * (np.exp(log_softmax(logp + b)).mean(0) - target)
    return b


def held_out_gains(probs: dict[str, np.ndarray], labels: np.ndarray, k: int, repeats: int) -> list[tuple[float, float]]:
    """(accuracy without, with the offsets) on each held-out half."""
    out = []
    for fit, held in half_splits(len(labels), repeats, seed=0):  # cv_select's halves
        logp = np.log(sum(probs[n] for n in ranked_runs(probs, labels, fit)[:k]) / k)  # (n, 7)
        b = fit_bias(logp[fit], labels[fit])
        out.append(tuple(float(((logp[held] + c).argmax(1) == labels[held]).mean()) for c in (0.0, b)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--tta", action="store_true")
    p.add_argument("--k", type=int, nargs="+", default=[10, 20, 29])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--data", default=None)
    args = p.parse_args()
    runs, splits, _ = load_runs(args.runs, args.data)
    probs = {r.name: np.exp(log_softmax(r.split("PublicTest", args.tta))) for r in runs}
    rows = []
    for k in (k for k in args.k if k <= len(probs)):
        pairs = np.array(held_out_gains(probs, splits.val.labels, k, args.repeats))
        gain = pairs[:, 1] - pairs[:, 0]
        rows.append(
            {
                "top k": k,
                "held-out acc": pairs[:, 0].mean(),
                "with bias": pairs[:, 1].mean(),
                "gain": gain.mean(),
                "gain sd": gain.std(),
            }
        )
    report(f"ensemble_bias_{len(probs)}runs{'_tta' if args.tta else ''}", rows, {"runs": sorted(probs)})


if __name__ == "__main__":
    main()
