"""`ferkit train / distill / evaluate / models`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Flags that are recipe keys of the same name: `--seed 3` is `--set seed=3`.
RECIPE_FLAGS = ("seed", "devices", "num_nodes", "strategy", "accelerator", "batch_size", "limit", "threads", "split")


def cmd_train(args: argparse.Namespace) -> int:
    from ferkit import report
    from ferkit.training.config import load_config
    from ferkit.training.loop import run_recipe

    overrides = list(args.set or [])
    for flag, key in (("teacher", "teachers"), ("teacher_logits", "teacher_logits")):  # `ferkit distill` only
        if getattr(args, flag, None):
            overrides.append(f"{key}={json.dumps(getattr(args, flag))}")
    overrides += [f"{k}={getattr(args, k)}" for k in (*RECIPE_FLAGS, "data") if getattr(args, k) is not None]
    cfg = load_config(args.config, overrides, args.epochs)
    summary, run_dir = run_recipe(cfg, Path(args.run_dir) if args.run_dir else None)
    report.show(*report.train_summary(summary, run_dir))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ferkit.models.predict import evaluate_models

    _, out, text = evaluate_models(args.model, args.split, args.protocol, args.data, args.tta, args.precision, args.out)
    print(f"{text}\nwrote {out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """The registry: each model's parameters and multiply-accumulates for one face at its input size."""
    from ferkit import report
    from ferkit.models import describe_models

    rows = describe_models()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        report.show(report.models_table(rows))
    return 0
