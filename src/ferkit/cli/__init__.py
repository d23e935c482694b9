"""`ferkit` command line: one word per stage. The only module that wires stages together."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ferkit import __version__
from ferkit.cli.data_cmds import _add_data_args, cmd_data_download, cmd_data_info, cmd_data_plot
from ferkit.cli.export_cmds import add_export_parsers
from ferkit.cli.game_cmds import add_score_parser
from ferkit.cli.predict_cmds import add_predict_parsers
from ferkit.cli.runs_cmds import add_runs_parsers
from ferkit.cli.serve_cmds import add_serve_parser
from ferkit.cli.train_cmds import cmd_evaluate, cmd_models, cmd_train
from ferkit.errors import FerkitError, extra_of


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="a recipe by name (seed, best, fast, student, mobile, qat) or a YAML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any recipe key (phases.0.epochs=5)")
    p.add_argument("--data", help="FER2013 file or folder")
    p.add_argument("--split", choices=("official", "notebook"), help="official (default) or the notebook's 80/20")
    p.add_argument("--epochs", type=int, help="cap every phase at this many epochs")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--limit", type=int, help="use only the first N images of each split (smoke runs)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--accelerator", help="cpu, gpu or auto (Lightning)")
    p.add_argument("--devices", help="devices per node (Lightning), e.g. 2")
    p.add_argument("--num-nodes", type=int, help="nodes for multi-node DDP (Lightning)")
    p.add_argument("--strategy", help="auto, ddp, ddp_spawn, ... (Lightning)")
    p.add_argument("--run-dir", help="run folder (default runs/<name>-<split>-s<seed>); rerun to resume")


def _distill_parser(stages) -> argparse.ArgumentParser:
    d = stages.add_parser("distill", help="train a student (e.g. --config mobile) on labels and teachers' outputs")
    who = d.add_mutually_exclusive_group(required=True)
    who.add_argument("--teacher", action="append", metavar="MODEL", help="a teacher's model.pt (repeat)")
    who.add_argument(
        "--teacher-logits",
        nargs="+",
        metavar="RUN",
        help="committed runs (results/runs/<run>): their Training logits, ensembled, are the soft targets",
    )
    d.set_defaults(func=cmd_train)
    return d


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
    dl.add_argument("--dest", help="target folder (default: $FERKIT_CACHE/fer2013, where ferkit looks for it)")
    dl.set_defaults(func=cmd_data_download)

    tr = stages.add_parser("train", help="train a recipe (by name or YAML file); resumes an interrupted run")
    tr.set_defaults(func=cmd_train)
    for sub in (tr, _distill_parser(stages)):
        _add_train_args(sub)

    ev = stages.add_parser(
        "evaluate", help="accuracy, per-class P/R/F1, confusion matrix, curves (JSON, Markdown, PNG)"
    )
    ev.add_argument("model", nargs="+", help="a run's model.pt (or .ckpt); several: their ensemble (mean probability)")
    ev.add_argument(
        "--split",
        choices=("val", "test"),
        default="val",
        help="val (PublicTest) for every decision; test (PrivateTest) once per final model",
    )
    ev.add_argument("--protocol", choices=("official", "notebook"), help="default: the one the model was trained on")
    ev.add_argument("--data", help="FER2013 file or folder (default: the run's)")
    ev.add_argument(
        "--tta",
        nargs="?",
        const="flip",
        choices=("flip", "tencrop"),
        help="test-time augmentation: flip (the default with --tta) or tencrop (corners + centre, mirrored)",
    )
    ev.add_argument("--precision", default="32-true", help="32-true (default) or bf16-mixed")
    ev.add_argument("--out", help="output folder (default: <run>/eval-<split>)")
    ev.set_defaults(func=cmd_evaluate)
    md = stages.add_parser("models", help="the registered models: parameters and FLOPs per face")
    md.add_argument("--json", action="store_true", help="print JSON instead of a table")
    md.set_defaults(func=cmd_models)
    add_export_parsers(stages)
    add_predict_parsers(stages)
    add_runs_parsers(stages)
    add_score_parser(stages)
    add_serve_parser(stages)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FerkitError as e:
        print(f"ferkit: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # an optional extra is missing: say which, never a traceback
        extra = extra_of(e.name)
        if extra is None:
            raise
        top = e.name.split(".")[0]
        print(f"ferkit: error: `ferkit {args.stage}` needs '{top}', which is not installed: {extra}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
