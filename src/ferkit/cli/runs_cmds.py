"""`ferkit predictions` (a run's committed prediction file) and `ferkit ensemble` (members chosen on PublicTest)."""

from __future__ import annotations

import argparse
import json


def cmd_predictions(args: argparse.Namespace) -> int:
    if len(args.model) > 1:  # the folds of a k-fold partition: one run, Training logits out of fold
        from ferkit.models.predict import record_oof_predictions

        out = record_oof_predictions(args.model, args.out, args.data, args.commit, args.tta)
    elif args.model[0].endswith(".onnx"):  # through ONNX Runtime: no torch, no checkpoint needed
        from ferkit.predictions import record_onnx_predictions

        out = record_onnx_predictions(args.model[0], args.out, args.data)
    else:
        from ferkit.models.predict import record_predictions

        out = record_predictions(args.model[0], args.out, args.data, args.commit, args.tta, args.device)
    print(f"wrote {out}/predictions.npz and run.json")
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from ferkit.predictions import ensemble_from_runs
    from ferkit.report import ensemble_text

    r = ensemble_from_runs(args.runs, args.data, args.tta, args.select)
    print(json.dumps(r, indent=2) if args.json else ensemble_text(r, args.tta))
    return 0


def add_runs_parsers(stages) -> None:
    p = stages.add_parser("predictions", help="write a run's small committable prediction file (logits, run.json)")
    p.add_argument(
        "model",
        nargs="+",
        help="a run's model.pt, or a ferkit .onnx (e.g. the bundled default); or the model.pt of every fold of a "
        "k-fold partition (`--set folds=K --set fold=i`): one run whose Training logits are out of fold",
    )
    p.add_argument("--out", required=True, help="folder, e.g. results/runs/<run>")
    p.add_argument("--data", help="FER2013 file (default: the run's)")
    p.add_argument("--commit", help="git commit of the tree that trained it (default: recorded by train)")
    p.add_argument("--tta", default="flip", choices=("flip", "tencrop"), help="extra TTA logits (default flip)")
    p.add_argument("--device", default="cpu", help="where a model.pt's logits are computed: cpu, or cuda on a GPU")
    p.set_defaults(func=cmd_predictions)
    e = stages.add_parser("ensemble", help="an ensemble of committed runs, chosen on PublicTest only")
    e.add_argument("runs", nargs="+", help="run folders holding predictions.npz and run.json")
    e.add_argument("--data", help="FER2013 file (must be the one the runs predicted)")
    e.add_argument("--tta", action="store_true", help="use the runs' TTA logits where they have them")
    e.add_argument(
        "--select",
        default="greedy",
        choices=("greedy", "cv"),
        help="greedy: forward selection on PublicTest (default); cv: the rule (greedy or the mean of the k best "
        "runs) with the best held-out accuracy in repeated 2-fold cross-validation inside PublicTest",
    )
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_ensemble)
