"""Media for the runtime: expanding inputs, video frames with their timestamps, annotated images, and running the
recognizer over many files without losing the results of the good ones when one fails (no torch)."""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
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


def _captured(source: str | Path | int, every: int) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, seconds, BGR frame) for every `every`-th frame of a video file or a camera (an int index):
    files give each frame's own timestamp (CAP_PROP_POS_MSEC), a camera the monotonic clock since its first frame.
    The one capture loop behind video_frames and timed_frames."""
    import time

    import cv2

    if every < 1:
        raise FerkitError(f"every must be a positive integer, got {every}")
    camera = isinstance(source, int)
    cap = cv2.VideoCapture(source if camera else str(source))
    if not cap.isOpened():
        raise FerkitError(f"{source}: cannot open the {'camera' if camera else 'video'}")
    start, index, last = time.monotonic(), 0, -1.0
    try:
        while cap.grab():
            if index % every == 0:
                ok, frame = cap.retrieve()
                if ok:
                    t = time.monotonic() - start if camera else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                    last = t = max(t, last)  # a container's timestamps never go back for the tracker
                    yield index, t, frame
            index += 1
    finally:
        cap.release()


def video_frames(path: Path, every: int) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, BGR frame) for every `every`-th frame."""
    for index, _, frame in _captured(path, every):
        yield index, frame


def work_units(files: list[Path], every: int) -> int:
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


def annotate(image, faces, out: Path) -> None:
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


def output_stem(path: Path, frame: int | None) -> str:
    return path.stem if frame is None else f"{path.stem}_f{frame:06d}"


def sample_photo() -> Path:
    """matplotlib's bundled grace_hopper.jpg, found at run time (never committed)."""
    try:
        from matplotlib import cbook
    except ImportError:
        raise FerkitError("the demo photo comes with matplotlib: pip install 'ferkit[plot]'") from None
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@dataclass
class PredictResult:
    records: list[dict] = field(default_factory=list)  # one per face (or per input with no face)
    errors: list[str] = field(default_factory=list)  # one message per input (image or video) that failed


def _unique_stems(files: list[Path]) -> dict[Path, str]:
    """Output names for --annotate/--chart: the file stem, numbered where two inputs share one (a/x.jpg, b/x.jpg)."""
    seen: dict[str, int] = {}
    out = {}
    for f in files:
        n = seen.get(f.stem, 0)
        seen[f.stem] = n + 1
        out[f] = f.stem if n == 0 else f"{f.stem}-{n}"
    return out


def predict_files(
    rec,
    files: list[Path],
    every: int = 1,
    crop: bool | None = None,
    annotate_dir: Path | None = None,
    chart_dir: Path | None = None,
    advance=lambda: None,
) -> PredictResult:
    """Every image and every `every`-th video frame through `rec`. A file that cannot be read (a corrupt video, a
    non-image) is reported in `errors` and the others go on: nothing already computed is dropped."""
    if every < 1:
        raise FerkitError(f"every must be a positive integer (1 = every frame), got {every}")
    result, stems = PredictResult(), _unique_stems(files)
    for path in files:
        try:
            for frame, image in _frames_of_one(path, every):
                faces = rec.predict(image, crop=crop)
                stem = stems[path] if frame is None else f"{stems[path]}_f{frame:06d}"
                _record(result, rec, path, frame, faces, stem, image, annotate_dir, chart_dir)
                advance()
        except FerkitError as e:
            result.errors.append(str(e))
            print(f"ferkit: {e}", file=sys.stderr)
    return result


def _frames_of_one(path: Path, every: int):
    if path.suffix.lower() in VIDEO_EXT:
        yield from video_frames(path, every)
    else:
        yield None, path


def _record(result, rec, path, frame, faces, stem, image, annotate_dir, chart_dir) -> None:
    for i, face in enumerate(faces):
        result.records.append({"source": str(path), "frame": frame, "face": i, **face.to_dict()})
        if chart_dir is not None:
            from ferkit import plots

            probs = np.array([face.probabilities[c] for c in rec.labels])
            plots.probability_bars(probs, chart_dir / f"{stem}_face{i}.png", f"{path.name} face {i}: {face.expression}")
    if annotate_dir is not None:
        annotate(image, faces, annotate_dir / f"{stem}.jpg")
    if not faces:
        result.records.append({"source": str(path), "frame": frame, "face": None, "expression": None})


def video_fps(path: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    cap.release()
    return fps if fps and fps > 0 else 30.0  # some containers carry no rate: assume a phone camera's


def score_file(rec, path: Path, target: str, every: int, advance=lambda: None) -> list[dict]:
    """Per sampled frame (a photo is one frame): the tracker's score as a dict. Video frames are timed by their
    own timestamps (phone videos have variable frame rates)."""
    from ferkit.game import ScoreTracker

    if path.suffix.lower() not in VIDEO_EXT:
        tracker = ScoreTracker(target, settle_s=0.0)  # a photo is judged on itself
        row = {"source": str(path), "frame": None, **tracker.update(rec.predict(path)).to_dict()}
        advance()
        return [row]
    tracker = ScoreTracker(target, fps=video_fps(path))
    rows = []
    for i, t, frame in _captured(path, every):
        rows.append({"source": str(path), "frame": i, **tracker.update(rec.predict(frame, crop=False), t=t).to_dict()})
        advance()
    if not rows:
        raise FerkitError(f"{path}: the video has no frame that could be read")
    return rows


@dataclass
class ScoreResult:
    frames: dict[str, list[dict]] = field(default_factory=dict)  # source -> its scored frames, in order
    errors: list[str] = field(default_factory=list)  # one message per input that failed


def score_files(rec, files: list[Path], target: str, every: int = 1, advance=lambda: None) -> ScoreResult:
    """`score_file` over many inputs: one that cannot be read is reported and the others keep their scores."""
    from ferkit.labels import name_to_label

    try:
        name_to_label(target)
    except ValueError as e:
        raise FerkitError(str(e)) from None
    result = ScoreResult()
    for f in files:
        try:
            result.frames[str(f)] = score_file(rec, f, target, every, advance)
        except FerkitError as e:
            result.errors.append(str(e))
            print(f"ferkit: {e}", file=sys.stderr)
    return result


def demo(rec, out: Path, data: str | None = None) -> dict:
    """`ferkit demo`: the recognizer on the sample photo (annotated photo and chart written to `out`), then its
    PrivateTest accuracy through the runtime when FER2013 is at hand (else why not)."""
    from ferkit.data import load_fer2013
    from ferkit.errors import DataNotFoundError

    photo = predict_files(rec, [sample_photo()], crop=False, annotate_dir=out, chart_dir=out)
    report: dict = {"photo": photo.records, "out": str(out)}
    try:
        test = load_fer2013(data).subset("PrivateTest")
    except DataNotFoundError as e:
        return {**report, "no_data": str(e)}
    preds = rec.probabilities(test.images).argmax(1)  # the faces are 48 px crops already: no detection
    card = json.loads(rec.metadata.get("evaluation", "{}")).get("PrivateTest", {}).get("accuracy")
    return {**report, "n": len(test), "accuracy": float((preds == test.labels).mean()), "card_accuracy": card}


def timed_frames(source: str | Path | int, every: int = 1) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds, BGR frame) for every `every`-th frame of a video file or a camera (an int index): phone videos have
    variable frame rates, so a file's time is each frame's own presentation timestamp."""
    for _, t, frame in _captured(source, every):
        yield t, frame
