"""`ferkit train / evaluate` commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_train(args: argparse.Namespace) -> int:
    from ferkit.training.config import load_config
    from ferkit.training.loop import run_recipe

    overrides = list(args.set or [])
    if getattr(args, "teacher", None):
        overrides.append(f"teachers={json.dumps(args.teacher)}")
    if getattr(args, "teacher_logits", None):
        overrides.append(f"teacher_logits={json.dumps(args.teacher_logits)}")
    for flag in ("seed", "devices", "num_nodes", "strategy", "accelerator", "batch_size", "limit", "threads", "split"):
        if getattr(args, flag) is not None:
            overrides.append(f"{flag}={getattr(args, flag)}")
    if args.data:
        overrides.append(f"data={args.data}")
    cfg = load_config(args.config, overrides)
    if args.epochs is not None:
        for phase in cfg.phases:
            phase.epochs = args.epochs
    summary, run_dir = run_recipe(cfg, Path(args.run_dir) if args.run_dir else None)
    _print_summary(summary, run_dir)
    return 0


def _print_summary(summary: dict, run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{run_dir} ({summary['precision']}, {summary['parameters']['trainable']:,} parameters)")
    for col in ("phase", "epochs", "seconds", "hard examples", "val accuracy", "val macro-F1"):
        table.add_column(col, justify="right")
    for p in summary["phases"]:
        table.add_row(
            p["phase"],
            str(p["epochs_run"]),
            str(p["seconds"]),
            str(p.get("hard_examples", "-")),
            f"{p['val']['accuracy']:.4f}",
            f"{p['val']['macro_f1']:.4f}",
        )
    Console(width=120).print(table)
    print(f"model: {run_dir / 'model.pt'}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ferkit.models.predict import evaluate_models

    _, out, text = evaluate_models(args.model, args.split, args.protocol, args.data, args.tta, args.precision, args.out)
    print(text)
    print(f"wrote {out}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """The registry: each model's parameters and multiply-accumulates for one face at its input size."""
    from ferkit.models import count_flops, count_parameters, create_model, list_models

    rows = []
    for name in list_models():
        model = create_model(name)
        macs = count_flops(model)
        rows.append(
            {
                "model": name,
                "parameters": count_parameters(model)["trainable"],
                "input_size": list(model.pretrained_cfg["input_size"]),
                "macs": macs,
                "flops": 2 * macs,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ferkit models (one face, forward pass; FLOPs = 2 x multiply-accumulates)")
    for col in ("model", "parameters", "input", "MMAC", "MFLOP"):
        table.add_column(col, justify="right")
    for r in rows:
        size = "x".join(map(str, r["input_size"]))
        table.add_row(r["model"], f"{r['parameters']:,}", size, f"{r['macs'] / 1e6:.1f}", f"{r['flops'] / 1e6:.1f}")
    Console(width=120).print(table)
    return 0
