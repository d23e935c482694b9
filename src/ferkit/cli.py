"""`ferkit` command line: one word per stage. The only module that wires stages together."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ferkit import __version__
from ferkit.errors import FerkitError
from ferkit.labels import CLASS_NAMES


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="FER2013 file or folder (default: $FERKIT_DATA, then ../shared/datasets/fer2013)")
    p.add_argument("--layout", help="force the layout: fer2013-csv, icml-csv, train-csv, test-csv or folder")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="bad rows: stop (default) or skip")
    p.add_argument("--no-cache", action="store_true", help="parse the source again instead of using the cache")


def _load(args: argparse.Namespace):
    from ferkit.data import load_fer2013

    ds = load_fer2013(args.data, layout=args.layout, on_error=args.on_error, use_cache=not args.no_cache)
    if ds.skipped:
        print(f"warning: skipped {len(ds.skipped)} bad rows; first: {ds.skipped[0].where}: {ds.skipped[0].reason}")
    return ds


def cmd_data_info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ferkit.data import quality_report

    ds = _load(args)
    report = quality_report(ds)
    usages = ds.usage_names()
    if args.json:
        counts = {u: ds.subset(u).class_counts().tolist() for u in usages}
        print(
            json.dumps(
                {
                    "source": ds.source,
                    "layout": ds.layout,
                    "rows": len(ds),
                    "classes": list(CLASS_NAMES),
                    "counts": counts,
                    "quality": asdict(report),
                    "skipped": len(ds.skipped),
                },
                indent=2,
            )
        )
        return 0
    table = Table(title=f"FER2013 — {ds.source} ({ds.layout}, {len(ds)} rows)")
    for col in ("split", *CLASS_NAMES, "total"):
        table.add_column(col, justify="right")
    for u in usages:
        part = ds.subset(u)
        counts = part.class_counts()
        cells = [str(int(c)) for c in counts] if part.labeled else ["-"] * len(CLASS_NAMES)
        table.add_row(u, *cells, str(len(part)))
    console = Console(width=max(Console().width, 110))
    console.print(table)
    console.print(
        f"exact duplicates: {report.within_training} Training images repeat within Training; "
        f"{report.public_in_training} PublicTest and {report.private_in_training} PrivateTest images also appear "
        f"in Training; {report.private_in_public} PrivateTest images appear in PublicTest; "
        f"{report.conflicting_groups} duplicate groups carry conflicting labels.\n"
        f"near-blank images (pixel std < 3): {report.near_blank} {report.near_blank_by_usage}\n"
        f"skipped rows: {len(ds.skipped)}. The official test sets are kept as they are (published numbers include "
        "the duplicates)."
    )
    return 0


def cmd_data_plot(args: argparse.Namespace) -> int:
    from ferkit import plots

    ds = _load(args)
    out = Path(args.out)
    counts = {u: ds.subset(u).class_counts() for u in ds.usage_names() if ds.subset(u).labeled}
    written = [plots.class_histogram(counts, out / "class_histogram.png")]
    labeled = ds.select(ds.labels >= 0)
    written.append(plots.sample_grid(labeled.images, labeled.labels, out / "samples.png", per_class=args.per_class))
    for path in written:
        print(path)
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from ferkit.data.download import download

    print(download(args.dest))
    return 0


def _limit(ds, n: int | None):
    return ds if n is None else ds.select(slice(0, n))


def cmd_train(args: argparse.Namespace) -> int:
    import yaml

    from ferkit.config import load_config, to_dict
    from ferkit.data import load_fer2013, make_splits
    from ferkit.train import train

    overrides = list(args.set or [])
    for flag in ("seed", "devices", "num_nodes", "strategy", "accelerator", "batch_size", "limit", "threads", "split"):
        if getattr(args, flag) is not None:
            overrides.append(f"{flag}={getattr(args, flag)}")
    if args.data:
        overrides.append(f"data={args.data}")
    cfg = load_config(args.config, overrides)
    if args.epochs is not None:
        for phase in cfg.phases:
            phase.epochs = args.epochs
    splits = make_splits(load_fer2013(cfg.data), cfg.split, seed=cfg.seed)
    if cfg.limit:
        splits.train, splits.val, splits.test = (_limit(p, cfg.limit) for p in (splits.train, splits.val, splits.test))
    run_dir = Path(args.run_dir or Path(cfg.out) / f"{cfg.name}-{cfg.split}-s{cfg.seed}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    summary = train(cfg, splits, run_dir)
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ferkit import plots
    from ferkit.data import load_fer2013, make_splits
    from ferkit.evaluate import predict_logits
    from ferkit.metrics import classification_report, report_markdown
    from ferkit.train import load_model

    model, ckpt = load_model(args.model)
    config = ckpt.get("config", {})
    split = args.protocol or config.get("split", "official")
    splits = make_splits(load_fer2013(args.data or config.get("data")), split, seed=config.get("seed", 42))
    part = {"val": splits.val, "test": splits.test}[args.split]
    usage = (
        "PublicTest"
        if split == "official" and args.split == "val"
        else "PrivateTest"
        if split == "official"
        else f"{split} {args.split}"
    )
    logits = predict_logits(model, part.images, precision=args.precision, tta=args.tta)
    report = classification_report(logits, part.labels)
    report.update({"model": str(args.model), "protocol": split, "split": args.split, "usage": usage, "tta": args.tta})
    out = Path(args.out or Path(args.model).parent / f"eval-{args.split}{'-tta' if args.tta else ''}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    title = f"{Path(args.model).parent.name}: {usage}{' (flip TTA)' if args.tta else ''}"
    (out / "report.md").write_text(report_markdown(report, title))
    plots.confusion_matrix(np.asarray(report["confusion"]), out / "confusion.png", title)
    run_dir = Path(args.model).parent
    phases = [(d.name.split("-", 1)[-1], _read_metrics(d)) for d in sorted(run_dir.glob("[0-9]*-*")) if d.is_dir()]
    if any(rows for _, rows in phases):
        plots.training_curves(phases, out / "training_curves.png")
    print(report_markdown(report, title))
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferkit", description="Facial-expression recognition on FER2013.")
    parser.add_argument("--version", action="version", version=f"ferkit {__version__}")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="COMMAND")

    data = stages.add_parser("data", help="inspect, plot or download FER2013").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    info = data.add_parser("info", help="counts per split and class, duplicates, blank images, layout")
    _add_data_args(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=cmd_data_info)
    plot = data.add_parser("plot", help="class histogram and a sample grid as PNG")
    _add_data_args(plot)
    plot.add_argument("--out", required=True, help="folder for the PNG files")
    plot.add_argument("--per-class", type=int, default=8, help="sample faces per class (default 8)")
    plot.set_defaults(func=cmd_data_plot)
    dl = data.add_parser("download", help="download FER2013 from Kaggle (needs Kaggle credentials)")
    dl.add_argument("--dest", default=str(Path.home() / ".cache" / "ferkit" / "fer2013"), help="target folder")
    dl.set_defaults(func=cmd_data_download)

    tr = stages.add_parser("train", help="train a recipe (configs/*.yaml); resumes an interrupted run")
    tr.add_argument("--config", help="recipe YAML, e.g. configs/seed.yaml")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any recipe key (phases.0.epochs=5)")
    tr.add_argument("--data", help="FER2013 file or folder")
    tr.add_argument("--split", choices=("official", "notebook"), help="official (default) or the notebook's 80/20")
    tr.add_argument("--epochs", type=int, help="cap every phase at this many epochs")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--limit", type=int, help="use only the first N images of each split (smoke runs)")
    tr.add_argument("--threads", type=int, help="torch CPU threads")
    tr.add_argument("--accelerator", help="cpu, gpu or auto (Lightning)")
    tr.add_argument("--devices", help="devices per node (Lightning), e.g. 2")
    tr.add_argument("--num-nodes", type=int, help="nodes for multi-node DDP (Lightning)")
    tr.add_argument("--strategy", help="auto, ddp, ddp_spawn, ... (Lightning)")
    tr.add_argument("--run-dir", help="run folder (default runs/<name>-<split>-s<seed>); rerun to resume")
    tr.set_defaults(func=cmd_train)

    ev = stages.add_parser(
        "evaluate", help="accuracy, per-class P/R/F1, confusion matrix, curves (JSON, Markdown, PNG)"
    )
    ev.add_argument("model", help="a run's model.pt (or a Lightning .ckpt)")
    ev.add_argument(
        "--split",
        choices=("val", "test"),
        default="val",
        help="val (PublicTest) for every decision; test (PrivateTest) once per final model",
    )
    ev.add_argument("--protocol", choices=("official", "notebook"), help="default: the one the model was trained on")
    ev.add_argument("--data", help="FER2013 file or folder (default: the run's)")
    ev.add_argument("--tta", action="store_true", help="average the logits of each face and its mirror image")
    ev.add_argument("--precision", default="32-true", help="32-true (default) or bf16-mixed")
    ev.add_argument("--out", help="output folder (default: <run>/eval-<split>)")
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FerkitError as e:
        print(f"ferkit: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
