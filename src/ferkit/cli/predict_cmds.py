"""`ferkit predict`: photos, folders, globs and videos through the torch-free runtime."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from ferkit.cli.args import positive_int


def cmd_predict(args: argparse.Namespace) -> int:
    from ferkit.media import expand_inputs, predict_files, work_units
    from ferkit.progress import progress
    from ferkit.runtime import Recognizer

    rec = Recognizer.from_file(args.model) if args.model else Recognizer.default()
    crop = True if args.crop else False if args.detect else None
    files = expand_inputs(args.inputs)
    out = {k: Path(v) if v else None for k, v in (("annotate", args.annotate), ("chart", args.chart))}
    with progress("predicting", total=work_units(files, args.every)) as advance:
        result = predict_files(rec, files, args.every, crop, out["annotate"], out["chart"], advance)
    _print_records(result.records, args, rec.labels)
    return 1 if result.errors else 0  # the good inputs are still reported; the status says some failed


def _print_records(records: list[dict], args: argparse.Namespace, labels) -> None:
    if args.json:
        print(json.dumps(records, indent=1))
        return
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["source", "frame", "face", "x", "y", "w", "h", "score", "expression", *labels])
        for r in records:
            box = r.get("box") or [""] * 4
            probs = [r["probabilities"][c] for c in labels] if r.get("probabilities") else [""] * len(labels)
            writer.writerow([r["source"], r["frame"], r["face"], *box, r.get("score", ""), r["expression"], *probs])
        return
    if not records:  # every input failed, each said why on stderr: an empty table would only add noise
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("source", "frame", "face", "box", "expression", "p", "runner-up"):
        table.add_column(col)
    for r in records:
        if r["face"] is None:
            table.add_row(Path(r["source"]).name, str(r["frame"] or ""), "-", "-", "no face", "", "")
            continue
        ranked = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])
        table.add_row(
            Path(r["source"]).name,
            "" if r["frame"] is None else str(r["frame"]),
            str(r["face"]),
            " ".join(map(str, r["box"])),
            ranked[0][0],
            f"{ranked[0][1]:.2f}",
            f"{ranked[1][0]} {ranked[1][1]:.2f}",
        )
    Console(width=120).print(table)


def cmd_demo(args: argparse.Namespace) -> int:
    """The bundled model on a sample photo, then its PrivateTest accuracy through the runtime when FER2013 is here."""
    from ferkit.data import load_fer2013
    from ferkit.errors import DataNotFoundError
    from ferkit.media import predict_files, sample_photo
    from ferkit.runtime import Recognizer

    rec = Recognizer.default()
    out = Path(args.out)
    result = predict_files(rec, [sample_photo()], crop=False, annotate_dir=out, chart_dir=out)
    for r in result.records:
        print(f"{Path(r['source']).name}: face {r['face']} {r['expression']}")
    print(f"annotated photo and probability chart: {args.out}/")
    try:
        test = load_fer2013(args.data).subset("PrivateTest")
    except DataNotFoundError as e:
        print(f"(no FER2013, so no accuracy check)\n{e}")
        return 0
    results = rec.predict_batch(list(test.images), crop=True)
    preds = np.array([rec.labels.index(r[0].expression) for r in results])
    reported = json.loads(rec.metadata.get("evaluation", "{}")).get("PrivateTest", {}).get("accuracy")
    print(
        f"bundled model on FER2013 PrivateTest ({len(test)} faces, through ferkit.Recognizer): "
        f"accuracy {float((preds == test.labels).mean()):.4f}" + (f" (model card: {reported:.4f})" if reported else "")
    )
    return 0


def add_predict_parsers(stages) -> None:
    from ferkit.cli.export_cmds import add_export_parsers

    add_export_parsers(stages)
    pr = stages.add_parser("predict", help="expressions of the faces in photos, folders, globs and videos (no torch)")
    pr.add_argument("inputs", nargs="+", help="image or video files, folders, or glob patterns")
    pr.add_argument("--model", help="an exported ferkit .onnx (default: the bundled model)")
    mode = pr.add_mutually_exclusive_group()
    mode.add_argument("--crop", action="store_true", help="inputs are face crops: classify them whole")
    mode.add_argument("--detect", action="store_true", help="always detect faces (default: images <= 64 px are crops)")
    pr.add_argument("--every", type=positive_int, default=10, help="videos: classify every Nth frame (default 10)")
    out = pr.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON records")
    out.add_argument("--csv", action="store_true", help="print CSV rows")
    pr.add_argument("--annotate", metavar="DIR", help="write each image with boxes and labels to DIR")
    pr.add_argument("--chart", metavar="DIR", help="write the probability bar chart of each face to DIR")
    pr.set_defaults(func=cmd_predict)
    dm = stages.add_parser("demo", help="the bundled model on a sample photo, and its PrivateTest accuracy")
    dm.add_argument("--out", default="runs/demo", help="folder for the annotated photo and chart")
    dm.add_argument("--data", help="FER2013 file or folder")
    dm.set_defaults(func=cmd_demo)
