"""`ferkit predict`: photos, folders, globs and videos through the torch-free runtime."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ferkit.cli.args import MODEL_HELP, positive_int, recognizer


def cmd_predict(args: argparse.Namespace) -> int:
    from ferkit import report
    from ferkit.media import expand_inputs, predict_files, work_units
    from ferkit.progress import progress

    rec, files = recognizer(args.model), expand_inputs(args.inputs)
    crop = True if args.crop else False if args.detect else None
    out = {k: Path(v) if v else None for k, v in (("annotate", args.annotate), ("chart", args.chart))}
    with progress("predicting", total=work_units(files, args.every)) as advance:
        result = predict_files(rec, files, args.every, crop, out["annotate"], out["chart"], advance)
    if args.json:
        print(json.dumps(result.records, indent=1))
    elif args.csv:
        report.records_csv(result.records, rec.labels)
    elif result.records:  # when every input failed, each said why on stderr: an empty table would only add noise
        report.show(report.records_table(result.records))
    return 1 if result.errors else 0  # the good inputs are still reported; the status says some failed


def cmd_demo(args: argparse.Namespace) -> int:
    """The bundled model on a sample photo, then its PrivateTest accuracy through the runtime when FER2013 is here."""
    from ferkit.media import demo

    r = demo(recognizer(args.model), Path(args.out), args.data)
    for face in r["photo"]:
        print(f"{Path(face['source']).name}: face {face['face']} {face['expression']}")
    print(f"annotated photo and probability chart: {args.out}/")
    if "no_data" in r:
        print(f"(no FER2013, so no accuracy check)\n{r['no_data']}")
        return 0
    card = f" (model card: {r['card_accuracy']:.4f})" if r["card_accuracy"] else ""
    print(
        f"bundled model on FER2013 PrivateTest ({r['n']} faces, through ferkit.Recognizer): "
        f"accuracy {r['accuracy']:.4f}{card}"
    )
    return 0


def add_predict_parsers(stages) -> None:
    pr = stages.add_parser("predict", help="expressions of the faces in photos, folders, globs and videos (no torch)")
    pr.add_argument("inputs", nargs="+", help="image or video files, folders, or glob patterns")
    pr.add_argument("--model", help=MODEL_HELP)
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
    dm.add_argument("--model", help=MODEL_HELP)
    dm.add_argument("--data", help="FER2013 file or folder")
    dm.set_defaults(func=cmd_demo)
