"""`ferkit score`: the Best Actor score of a photo or a video for one target expression (no torch)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ferkit.errors import FerkitError


def _video_fps(path: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return fps if fps and fps > 0 else 30.0  # some containers carry no rate: assume a phone camera's


def score_file(rec, path: Path, target: str, every: int) -> list[dict]:
    """Per sampled frame (a photo is one frame): the tracker's score as a dict."""
    from ferkit.cli.predict_cmds import VIDEO_EXT, video_frames
    from ferkit.game import ScoreTracker

    if path.suffix.lower() not in VIDEO_EXT:
        tracker = ScoreTracker(target, settle_s=0.0)  # a photo is judged on itself
        return [{"source": str(path), "frame": None, **tracker.update(rec.predict(path)).to_dict()}]
    fps = _video_fps(path)
    tracker = ScoreTracker(target, fps=fps)
    return [
        {"source": str(path), "frame": i, **tracker.update(rec.predict(frame, crop=False), t=i / fps).to_dict()}
        for i, frame in video_frames(path, every)
    ]


def cmd_score(args: argparse.Namespace) -> int:
    from ferkit.cli.predict_cmds import expand_inputs
    from ferkit.labels import name_to_label
    from ferkit.runtime import Recognizer

    try:
        name_to_label(args.target)
    except ValueError as e:
        raise FerkitError(str(e)) from None
    rec = Recognizer.from_file(args.model) if args.model else Recognizer.default()
    results = {str(f): score_file(rec, f, args.target, args.every) for f in expand_inputs(args.inputs)}
    if args.json:
        print(json.dumps([{"source": s, "score": rows[-1]["best"], "frames": rows} for s, rows in results.items()]))
        return 0
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
    return 0


def add_score_parser(stages) -> None:
    sc = stages.add_parser("score", help="Best Actor: how well the face in a photo or video shows an expression")
    sc.add_argument("inputs", nargs="+", help="photos or videos (files, folders or globs)")
    sc.add_argument("--target", required=True, help="the expression asked for: angry, disgust, fear, happy, ...")
    sc.add_argument("--model", help="an exported ferkit .onnx (default: the bundled model)")
    sc.add_argument("--every", type=int, default=1, help="videos: score every Nth frame (default: all)")
    sc.add_argument("--json", action="store_true", help="print JSON: the score and every frame's")
    sc.set_defaults(func=cmd_score)
