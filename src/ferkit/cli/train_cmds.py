"""`ferkit train / evaluate` commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _limit(ds, n: int | None):
    return ds if n is None else ds.select(slice(0, n))


def cmd_train(args: argparse.Namespace) -> int:
    import yaml

    from ferkit.data import join_ferplus, load_fer2013, locate_ferplus, make_splits, read_ferplus
    from ferkit.training.config import load_config, to_dict
    from ferkit.training.loop import soft_targets, train

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
    ds = load_fer2013(cfg.data)
    if cfg.ferplus_weight > 0 and ds.votes is None:
        ds = join_ferplus(ds, read_ferplus(locate_ferplus(cfg.ferplus)))
    splits = make_splits(ds, cfg.split, seed=cfg.seed)
    targets = soft_targets(cfg, splits)
    if cfg.limit:
        splits.train, splits.val, splits.test = (_limit(p, cfg.limit) for p in (splits.train, splits.val, splits.test))
        targets = None if targets is None else targets[: cfg.limit]
    run_dir = Path(args.run_dir or Path(cfg.out) / f"{cfg.name}-{cfg.split}-s{cfg.seed}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    summary = train(cfg, splits, run_dir, targets)
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


def _read_metrics(phase_dir: Path) -> list[dict]:
    """Per-epoch rows of a phase's metrics.csv (Lightning logs train and val on separate rows)."""
    import csv

    # metrics.N.csv are the parts written before each resume, oldest first; metrics.csv is the latest.
    parts = [*sorted(phase_dir.glob("metrics.*.csv"), key=lambda p: int(p.suffixes[0][1:])), phase_dir / "metrics.csv"]
    by_epoch: dict[int, dict] = {}
    for path in (p for p in parts if p.exists()):
        with path.open() as f:
            for row in csv.DictReader(f):
                if row.get("epoch"):
                    merged = by_epoch.setdefault(int(row["epoch"]), {"epoch": row["epoch"]})
                    merged.update({k: v for k, v in row.items() if v not in ("", None)})
    return [by_epoch[e] for e in sorted(by_epoch)]


def _ensemble_logits(paths: list[str], images: np.ndarray, precision: str, tta) -> np.ndarray:
    """Log of the members' mean probability: an ensemble averages probabilities, then reads the argmax."""
    from ferkit.metrics import softmax
    from ferkit.models.checkpoint import load_model
    from ferkit.models.predict import predict_logits

    probs = [
        softmax(predict_logits(load_model(p)[0], images, precision=precision, tta=tta).astype(np.float64))
        for p in paths
    ]
    return np.log(np.clip(np.mean(probs, axis=0), 1e-12, None))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ferkit import plots
    from ferkit.data import load_fer2013, make_splits
    from ferkit.data.quality import unseen_mask
    from ferkit.metrics import classification_report, report_markdown, subset_summary
    from ferkit.models.checkpoint import load_model

    _, ckpt = load_model(args.model[0])
    config = ckpt.get("config", {})
    split = args.protocol or config.get("split", "official")
    splits = make_splits(load_fer2013(args.data or config.get("data")), split, seed=config.get("seed", 42))
    part = {"val": splits.val, "test": splits.test}[args.split]
    official = {"val": "PublicTest", "test": "PrivateTest"}
    usage = official[args.split] if split == "official" else f"{split} {args.split}"
    logits = _ensemble_logits(args.model, part.images, args.precision, args.tta or False)
    report = classification_report(logits, part.labels)
    report["unseen"] = subset_summary(logits, part.labels, unseen_mask(part.images, splits.train.images))
    report.update({"models": args.model, "protocol": split, "split": args.split, "usage": usage, "tta": args.tta})
    run_dir = Path(args.model[0]).parent
    name = f"eval-{args.split}{'-' + args.tta if args.tta else ''}{'-ensemble' if len(args.model) > 1 else ''}"
    out = Path(args.out or run_dir / name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    who = run_dir.name if len(args.model) == 1 else f"ensemble of {len(args.model)}"
    title = f"{who}: {usage}{f' ({args.tta} TTA)' if args.tta else ''}"
    (out / "report.md").write_text(report_markdown(report, title))
    plots.confusion_matrix(np.asarray(report["confusion"]), out / "confusion.png", title)
    phases = [(d.name.split("-", 1)[-1], _read_metrics(d)) for d in sorted(run_dir.glob("[0-9]*-*")) if d.is_dir()]
    if len(args.model) == 1 and any(rows for _, rows in phases):
        plots.training_curves(phases, out / "training_curves.png")
    print(report_markdown(report, title))
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
