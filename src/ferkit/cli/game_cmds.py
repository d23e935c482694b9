"""`ferkit score`: the Best Actor score of a photo or a video for one target expression (no torch)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ferkit.cli.args import positive_int
from ferkit.errors import FerkitError


def cmd_score(args: argparse.Namespace) -> int:
    from ferkit.labels import name_to_label
    from ferkit.media import expand_inputs, score_file
    from ferkit.runtime import Recognizer

    try:
        name_to_label(args.target)
    except ValueError as e:
        raise FerkitError(str(e)) from None
    rec = Recognizer.from_file(args.model) if args.model else Recognizer.default()
    results, failed = {}, 0
    for f in expand_inputs(args.inputs):
        try:
            results[str(f)] = score_file(rec, f, args.target, args.every)
        except FerkitError as e:  # one bad file: say so, keep the others' scores
            print(f"ferkit: {e}", file=sys.stderr)
            failed += 1
    if args.json:
        print(json.dumps([{"source": s, "score": rows[-1]["best"], "frames": rows} for s, rows in results.items()]))
        return 1 if failed else 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Best Actor: {args.target}")
    for col in ("source", "frame", "t (s)", "this frame", "steady", "best", "model sees"):
        table.add_column(col, justify="right")
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    for source, rows in results.items():
        for r in rows:
            table.add_row(
                Path(source).name,
                "" if r["frame"] is None else str(r["frame"]),
                f"{r['t']:.2f}",
                fmt(r["raw"]),
                fmt(r["smoothed"]),
                fmt(r["best"]),
                r["expression"] or "no face",
            )
    console = Console(width=120)
    console.print(table)
    for source, rows in results.items():
        console.print(f"{Path(source).name}: score {rows[-1]['best']:.1f} / 100 for {args.target}")
    return 1 if failed else 0


def add_score_parser(stages) -> None:
    sc = stages.add_parser("score", help="Best Actor: how well the face in a photo or video shows an expression")
    sc.add_argument("inputs", nargs="+", help="photos or videos (files, folders or globs)")
    sc.add_argument("--target", required=True, help="the expression asked for: angry, disgust, fear, happy, ...")
    sc.add_argument("--model", help="an exported ferkit .onnx (default: the bundled model)")
    sc.add_argument("--every", type=positive_int, default=1, help="videos: score every Nth frame (default: all)")
    sc.add_argument("--json", action="store_true", help="print JSON: the score and every frame's")
    sc.set_defaults(func=cmd_score)
