"""`ferkit score`: the Best Actor score of a photo or a video for one target expression (no torch)."""

from __future__ import annotations

import argparse
import json

from ferkit.cli.args import MODEL_HELP, positive_int, recognizer


def cmd_score(args: argparse.Namespace) -> int:
    from ferkit import report
    from ferkit.media import expand_inputs, score_files, work_units
    from ferkit.progress import progress

    rec, files = recognizer(args.model), expand_inputs(args.inputs)
    with progress(f"scoring {args.target}", total=work_units(files, args.every)) as advance:
        result = score_files(rec, files, args.target, args.every, advance)
    if args.json:
        print(json.dumps([{"source": s, "score": f[-1]["best"], "frames": f} for s, f in result.frames.items()]))
    else:
        report.show(*report.score_report(result.frames, args.target))
    return 1 if result.errors else 0  # the good inputs are still reported; the status says some failed


def add_score_parser(stages) -> None:
    sc = stages.add_parser("score", help="Best Actor: how well the face in a photo or video shows an expression")
    sc.add_argument("inputs", nargs="+", help="photos or videos (files, folders or globs)")
    sc.add_argument("--target", required=True, help="the expression asked for: angry, disgust, fear, happy, ...")
    sc.add_argument("--model", help=MODEL_HELP)
    sc.add_argument("--every", type=positive_int, default=1, help="videos: score every Nth frame (default: all)")
    sc.add_argument("--json", action="store_true", help="print JSON: the score and every frame's")
    sc.set_defaults(func=cmd_score)
