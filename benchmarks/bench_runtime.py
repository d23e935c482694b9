"""Inference speed on this CPU: ONNX Runtime vs torch eager (same weights), and a whole 640x480 frame end to end,
by the previous code path (YuNet on every whole frame) and with the FaceTracker (a window around the last face)
side by side in one run; then what tracking does to accuracy on the margin study's PublicTest protocol.

python benchmarks/bench_runtime.py [--model seed_vgg] [--protocol-faces 3589] [--data FER2013]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ferkit.export.onnx import WithPreprocess, contract, export_onnx
from ferkit.media import sample_photo
from ferkit.models import create_model
from ferkit.runtime import Recognizer


def latencies(fn, runs: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def summarise(name: str, batch1: list[float], batch256: list[float]) -> dict:
    return {
        "engine": name,
        "batch-1 median ms": statistics.median(batch1),
        "batch-1 p90 ms": float(np.percentile(batch1, 90)),
        "batch-256 faces/s": 256 / (statistics.median(batch256) / 1000),
    }


def photo_640x480() -> np.ndarray:
    """matplotlib's grace_hopper.jpg, scaled to 480 px high, centred on a gray 640x480 frame (one face)."""
    img = cv2.imread(str(sample_photo()))
    h, w = img.shape[:2]
    img = cv2.resize(img, (round(w * 480 / h), 480), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 128, np.uint8)
    x = (640 - img.shape[1]) // 2
    frame[:, x : x + img.shape[1]] = img
    return frame


def in_frame(photo: np.ndarray, dx: int = 0, dy: int = 0) -> np.ndarray:
    """A gray photo (the margin study's 384x384 face) placed in a mid-gray 640x480 BGR frame, moved by (dx, dy)."""
    frame = np.full((480, 640, 3), 128, np.uint8)
    y, x = 48 + dy, 128 + dx
    frame[y : y + photo.shape[0], x : x + photo.shape[1]] = photo[..., None]
    return frame


def tracking_protocol(rec: Recognizer, data: str | None, n: int) -> dict:
    """PublicTest faces as photos (tune_margin.as_photo) in 640x480 frames: classified after a full-frame search
    (the previous path) and by a tracker that found the face in the previous frame, 6 px left and 4 px up."""
    from tune_margin import as_photo

    from ferkit.data import load_fer2013, make_splits

    val = make_splits(load_fer2013(data), "official").val
    full, tracked = [], []
    for face in val.images[:n]:
        photo = as_photo(face)
        frame = in_frame(photo)
        faces = rec.predict(frame)
        tracker = rec.tracker()
        rec.predict(in_frame(photo, -6, -4), tracker=tracker)  # the previous frame: a full-frame search
        follow = rec.predict(frame, tracker=tracker)
        full.append(rec.labels.index(faces[0].expression) if faces else -1)
        tracked.append(rec.labels.index(follow[0].expression) if follow else -1)
    full, tracked, labels = np.array(full), np.array(tracked), val.labels[:n]
    both = (full >= 0) & (tracked >= 0)
    return {
        "faces": int(n),
        "found_full_frame": int((full >= 0).sum()),
        "found_tracked": int((tracked >= 0).sum()),
        "found_by_both": int(both.sum()),
        "accuracy_full_frame_on_found_by_both": float((full[both] == labels[both]).mean()),
        "accuracy_tracked_on_found_by_both": float((tracked[both] == labels[both]).mean()),
        "agreement_on_found_by_both": float((full[both] == tracked[both]).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="seed_vgg")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument(
        "--protocol-faces", type=int, default=3589, help="PublicTest faces for the tracking check (0: skip)"
    )
    ap.add_argument("--data", help="FER2013 (default: found as ferkit finds it)")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    faces = np.random.default_rng(0).integers(0, 256, (256, 48, 48), dtype=np.uint8)
    path = Path(tempfile.mkdtemp()) / "bench.onnx"
    export_onnx(model, path, {"ferkit_contract": json.dumps(contract(model))}, faces[:32])
    rec = Recognizer.from_file(path)
    wrapped = WithPreprocess(model).eval()
    x1, x256 = torch.from_numpy(faces[:1, None].astype(np.float32)), torch.from_numpy(faces[:, None].astype(np.float32))

    def torch_run(x):
        with torch.inference_mode():
            return wrapped(x)

    rows = [
        summarise(
            "ONNX Runtime (ferkit runtime)",
            latencies(lambda: rec.logits(faces[:1]), args.runs),
            latencies(lambda: rec.logits(faces), 20),
        ),
        summarise(
            "torch eager fp32", latencies(lambda: torch_run(x1), args.runs), latencies(lambda: torch_run(x256), 20)
        ),
    ]
    frame = photo_640x480()
    default = Recognizer.default()
    assert len(default.predict(frame)) == 1
    tracker = default.tracker()
    assert len(default.predict(frame, tracker=tracker)) == 1
    # Interleaved, so both paths see the same machine state: the previous path, then the tracked one.
    e2e, e2e_tracked = [], []
    for _ in range(4):
        e2e += latencies(lambda: default.predict(frame), 25, warmup=3)
        e2e_tracked += latencies(lambda: default.predict(frame, tracker=tracker), 29, warmup=1)  # + 1 full search
    detect = latencies(lambda: default.detector.detect(frame), 50, warmup=5)
    extra = {
        "end_to_end_640x480_ms_median": statistics.median(e2e),
        "end_to_end_640x480_ms_p90": float(np.percentile(e2e, 90)),
        "tracked_end_to_end_640x480_ms_median": statistics.median(e2e_tracked),
        "tracked_end_to_end_640x480_ms_p90": float(np.percentile(e2e_tracked, 90)),
        "tracked_end_to_end_640x480_ms_mean": statistics.mean(e2e_tracked),  # full-frame searches included
        "detection_only_640x480_ms_median": statistics.median(detect),
        "threads": torch.get_num_threads(),
    }
    if args.protocol_faces:
        extra["tracking_protocol"] = tracking_protocol(default, args.data, args.protocol_faces)
    report(f"runtime_{args.model}", rows, extra)
    e2e_med, e2e_p90 = extra["end_to_end_640x480_ms_median"], extra["end_to_end_640x480_ms_p90"]
    print(
        f"640x480 photo, one face, detect + align + classify: median {e2e_med:.2f} ms (p90 {e2e_p90:.2f}); "
        f"detection alone {extra['detection_only_640x480_ms_median']:.2f} ms; tracked: median "
        f"{extra['tracked_end_to_end_640x480_ms_median']:.2f} ms (p90 {extra['tracked_end_to_end_640x480_ms_p90']:.2f},"
        f" mean with its full-frame searches {extra['tracked_end_to_end_640x480_ms_mean']:.2f})"
    )
    if "tracking_protocol" in extra:
        print("tracking on the margin study's PublicTest protocol:", json.dumps(extra["tracking_protocol"]))


if __name__ == "__main__":
    main()
