"""`ferkit predict`: photos, folders, globs and videos through the torch-free runtime."""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ferkit.errors import FerkitError

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".gif"}
VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def expand_inputs(items: list[str]) -> list[Path]:
    """Files, folders (images and videos inside, recursively) and globs -> a sorted list of files."""
    out: list[Path] = []
    for item in items:
        if any(ch in item for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not matches:
                raise FerkitError(f"{item}: the pattern matches no file")
            out += [p for p in matches if p.is_file()]
        elif Path(item).is_dir():
            out += sorted(p for p in Path(item).rglob("*") if p.suffix.lower() in IMAGE_EXT | VIDEO_EXT)
        elif Path(item).is_file():
            out.append(Path(item))
        else:
            raise FerkitError(f"{item}: no such file, folder or pattern")
    return out


def video_frames(path: Path, every: int) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, BGR frame) for every `every`-th frame."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FerkitError(f"{path}: cannot open the video")
    try:
        index = 0
        while True:
            ok = cap.grab()
            if not ok:
                break
            if index % every == 0:
                ok, frame = cap.retrieve()
                if ok:
                    yield index, frame
            index += 1
    finally:
        cap.release()


def _work_units(files: list[Path], every: int) -> int:
    """Progress total: 1 per image, 1 per sampled frame of each video."""
    import cv2

    total = 0
    for f in files:
        if f.suffix.lower() in VIDEO_EXT:
            cap = cv2.VideoCapture(str(f))
            total += max(1, -(-int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) // every))
            cap.release()
        else:
            total += 1
    return total


def _frames(files: list[Path], every: int) -> Iterator[tuple[Path, int | None, object]]:
    for f in files:
        if f.suffix.lower() in VIDEO_EXT:
            for index, frame in video_frames(f, every):
                yield f, index, frame
        else:
            yield f, None, f


def _annotate(image, faces, out: Path) -> None:
    import cv2

    from ferkit.preprocess import load_image, to_bgr

    canvas = to_bgr(load_image(image)).copy()
    thick = max(1, round(max(canvas.shape[:2]) / 400))
    for face in faces:
        x, y, w, h = face.box
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 0), thick)
        text = f"{face.expression} {face.probabilities[face.expression]:.2f}"
        cv2.putText(canvas, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (0, 200, 0), thick)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), canvas)


def _stem(path: Path, frame: int | None) -> str:
    return path.stem if frame is None else f"{path.stem}_f{frame:06d}"


def cmd_predict(args: argparse.Namespace) -> int:
    from ferkit.progress import progress
    from ferkit.runtime import Recognizer

    rec = Recognizer.from_file(args.model) if args.model else Recognizer.default()
    crop = True if args.crop else False if args.detect else None
    files = expand_inputs(args.inputs)
    records, errors = [], 0
    with progress("predicting", total=_work_units(files, args.every)) as advance:
        for path, frame, image in _frames(files, args.every):
            try:
                faces = rec.predict(image, crop=crop)
            except FerkitError as e:
                print(f"ferkit: {e}", file=sys.stderr)
                errors += 1
                continue
            for i, face in enumerate(faces):
                records.append({"source": str(path), "frame": frame, "face": i, **face.to_dict()})
                if args.chart:
                    from ferkit import plots

                    probs = np.array([face.probabilities[c] for c in rec.labels])
                    plots.probability_bars(
                        probs,
                        Path(args.chart) / f"{_stem(path, frame)}_face{i}.png",
                        f"{path.name} face {i}: {face.expression}",
                    )
            if args.annotate:
                _annotate(image, faces, Path(args.annotate) / f"{_stem(path, frame)}.jpg")
            if not faces:
                records.append({"source": str(path), "frame": frame, "face": None, "expression": None})
            advance()
    _print_records(records, args, rec.labels)
    return 1 if errors else 0  # the good inputs are still reported; the status says some failed


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


def sample_photo() -> Path:
    """matplotlib's bundled grace_hopper.jpg, found at run time (never committed)."""
    try:
        from matplotlib import cbook
    except ImportError:
        raise FerkitError("the demo photo comes with matplotlib: pip install 'ferkit[plot]'") from None
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def cmd_demo(args: argparse.Namespace) -> int:
    """The bundled model on a sample photo, then its PrivateTest accuracy through the runtime when FER2013 is here."""
    from ferkit.data import load_fer2013
    from ferkit.errors import DataNotFoundError
    from ferkit.runtime import Recognizer

    rec = Recognizer.default()
    photo = sample_photo()
    ns = argparse.Namespace(
        inputs=[str(photo)],
        model=None,
        crop=False,
        detect=False,
        every=10,
        json=False,
        csv=False,
        annotate=args.out,
        chart=args.out,
    )
    cmd_predict(ns)
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
    pr.add_argument("--every", type=int, default=10, help="videos: classify every Nth frame (default 10)")
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
