"""Inference speed on this CPU, side by side in one run:
- an architecture (--model) in ONNX Runtime vs torch eager (same random weights);
- per-face latency (batch 1, ONNX Runtime) of candidate architectures (--archs: the phone students tried): the
  shipped (inference-folded) graph on every core and on one, the graph as trained, the fold unpadded;
- every bundled model (default, mobile): per-face latency and a tracked 640x480 frame end to end, with the
  accuracy its file records;
- a whole 640x480 frame end to end by the previous code path (YuNet on every whole frame) and with the
  FaceTracker (a window around the last face); then what tracking does to accuracy on the margin study's
  PublicTest protocol.

python benchmarks/bench_runtime.py [--model seed_vgg] [--archs fast_fer_t mobile_fer] [--crop 44]
    [--protocol-faces 3589]
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

from ferkit.bundled import BUNDLED, bundled_model_path
from ferkit.export.onnx import ONNX_CHANNEL_BLOCK, WithPreprocess, contract, export_onnx
from ferkit.faces import TRACK_WINDOW_PX, FaceTracker
from ferkit.media import sample_photo
from ferkit.models import count_macs, count_parameters, create_model, create_model_from_metadata
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


def tracking_protocol(rec: Recognizer, data: str | None, n: int, windows: list[int]) -> dict:
    """PublicTest faces as photos (tune_margin.as_photo) in 640x480 frames: classified after a full-frame search
    (the previous path) and by trackers (one per search-window size) that found the face in the previous frame,
    6 px left and 4 px up."""
    from tune_margin import as_photo

    from ferkit.data import load_fer2013, make_splits

    val = make_splits(load_fer2013(data), "official").val
    full, tracked = [], {px: [] for px in windows}
    for face in val.images[:n]:
        photo = as_photo(face)
        frame = in_frame(photo)
        faces = rec.predict(frame)
        full.append(rec.labels.index(faces[0].expression) if faces else -1)
        for px in windows:
            tracker = FaceTracker(rec.detector, window_px=px)
            rec.predict(in_frame(photo, -6, -4), tracker=tracker)  # the previous frame: a full-frame search
            follow = rec.predict(frame, tracker=tracker)
            tracked[px].append(rec.labels.index(follow[0].expression) if follow else -1)
    full, labels = np.array(full), val.labels[:n]
    out: dict = {"faces": int(n), "found_full_frame": int((full >= 0).sum())}
    for px in windows:
        t = np.array(tracked[px])
        both = (full >= 0) & (t >= 0)
        out[f"window_{px}px"] = {
            "found_tracked": int((t >= 0).sum()),
            "found_by_both": int(both.sum()),
            "accuracy_full_frame_on_found_by_both": float((full[both] == labels[both]).mean()),
            "accuracy_tracked_on_found_by_both": float((t[both] == labels[both]).mean()),
            "agreement_on_found_by_both": float((full[both] == t[both]).mean()),
        }
    return out


def random_onnx(
    name: str, faces: np.ndarray, threads: int | None = None, block: int | None = ONNX_CHANNEL_BLOCK, **model_args
) -> tuple[torch.nn.Module, Recognizer]:
    """A registered architecture with random weights, and its export to a temporary ONNX file (latency only;
    block: the inference fold's channel block, None for the graph as trained)."""
    torch.manual_seed(0)
    model = create_model(name, **model_args).eval()
    path = Path(tempfile.mkdtemp()) / f"{name}.onnx"
    export_onnx(model, path, {"ferkit_contract": json.dumps(contract(model))}, faces[:32], channel_block=block)
    return model, Recognizer.from_file(path, threads)


def size_of(name: str, **model_args) -> dict:
    return sizes(create_model(name, **model_args))


def sizes(model: torch.nn.Module) -> dict:
    return {"parameters": count_parameters(model)["trainable"], "MFLOP": round(2 * count_macs(model) / 1e6, 1)}


def arch_rows(names: list[str], faces: np.ndarray, runs: int, crop: int | None = None) -> list[dict]:
    """Per-face batch-1 latency of each architecture (at `crop` px where given: the models take the 48 px face
    and crop inside the graph), with ONNX Runtime on every core and on one (a small graph at batch 1 may not
    pay for waking a second thread); on every core, the graph as trained (unfolded), and the fold without its
    channel padding; measured in interleaved rounds (same machine state)."""
    model_args = {"crop": crop} if crop else {}
    block = ONNX_CHANNEL_BLOCK
    variants = [(None, block), (1, block), (None, None), (None, 1)]  # (threads, channel block of the fold)
    recs = {(n, t, b): random_onnx(n, faces, t, b, **model_args)[1] for n in names for t, b in variants}
    ms: dict[tuple, list[float]] = {key: [] for key in recs}
    for _ in range(4):
        for key, rec in recs.items():
            ms[key] += latencies(lambda rec=rec: rec.logits(faces[:1]), runs // 4)
    return [
        {
            "architecture": n,
            "crop": crop,
            **size_of(n, **model_args),
            "batch-1 median ms": statistics.median(ms[n, None, block]),
            "batch-1 median ms, 1 thread": statistics.median(ms[n, 1, block]),
            "batch-1 median ms, unfolded graph": statistics.median(ms[n, None, None]),
            "batch-1 median ms, folded, channels unpadded": statistics.median(ms[n, None, 1]),
        }
        for n in names
    ]


def bundled_rows(frame: np.ndarray, faces: np.ndarray, runs: int, files: list[str] = ()) -> list[dict]:
    """Every bundled model, and each ferkit .onnx in `files` (a student's float and int8 exports, say), side by
    side: per-face latency (batch 1) and a tracked 640x480 frame end to end, interleaved round by round; the
    accuracy is what its file records (measured by `ferkit bundle`; blank for a file it has not measured)."""
    paths = {n: bundled_model_path(n) for n in BUNDLED if bundled_model_path(n).is_file()}
    paths |= {Path(f).name: Path(f) for f in files}
    recs = {n: Recognizer.from_file(p) for n, p in paths.items()}
    single = {n: Recognizer.from_file(p, threads=1) for n, p in paths.items()}  # batch 1 may not pay for a 2nd thread
    trackers = {n: rec.tracker() for n, rec in recs.items()}
    for n, rec in recs.items():
        assert len(rec.predict(frame, tracker=trackers[n])) == 1  # the full-frame search that starts tracking
    face, face1, frame_ms = {n: [] for n in recs}, {n: [] for n in recs}, {n: [] for n in recs}
    for _ in range(4):
        for n, rec in recs.items():
            face[n] += latencies(lambda rec=rec: rec.logits(faces[:1]), runs // 4)
            face1[n] += latencies(lambda rec=single[n]: rec.logits(faces[:1]), runs // 4)
            frame_ms[n] += latencies(lambda n=n, rec=rec: rec.predict(frame, tracker=trackers[n]), 29, warmup=1)
    rows = []
    for n, rec in recs.items():
        ev = json.loads(rec.metadata.get("evaluation", "{}"))
        rows.append(
            {
                "model": n,
                "architecture": rec.metadata.get("model_name", "?"),
                "int8": "quantization" in rec.metadata,
                **sizes(create_model_from_metadata(rec.metadata["model_name"], rec.metadata)),
                "ms/face median": statistics.median(face[n]),
                "ms/face 1 thread": statistics.median(face1[n]),
                "tracked frame median ms": statistics.median(frame_ms[n]),
                "tracked frame p90 ms": float(np.percentile(frame_ms[n], 90)),
                "PublicTest": ev.get("PublicTest", {}).get("accuracy"),
                "PrivateTest": ev.get("PrivateTest", {}).get("accuracy"),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="seed_vgg")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--archs", nargs="*", default=["fast_fer_s", "fast_fer_t", "mobile_fer"], help="latency table")
    ap.add_argument(
        "--protocol-faces", type=int, default=3589, help="PublicTest faces for the tracking check (0: skip)"
    )
    ap.add_argument("--crop", type=int, help="crop size (px) of the --archs rows (default: each one's own)")
    ap.add_argument("--data", help="FER2013 (default: found as ferkit finds it)")
    ap.add_argument("--files", nargs="*", default=[], help="ferkit .onnx files timed beside the bundled models")
    ap.add_argument(
        "--windows", type=int, nargs="+", default=[TRACK_WINDOW_PX], help="tracker search windows (px) to compare"
    )
    args = ap.parse_args()
    faces = np.random.default_rng(0).integers(0, 256, (256, 48, 48), dtype=np.uint8)
    model, rec = random_onnx(args.model, faces)
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
    trackers = {px: FaceTracker(default.detector, window_px=px) for px in args.windows}
    for tracker in trackers.values():
        assert len(default.predict(frame, tracker=tracker)) == 1
    # Interleaved, so every path sees the same machine state: the whole-frame path, then each tracker.
    e2e, e2e_tracked = [], {px: [] for px in trackers}
    for _ in range(4):
        e2e += latencies(lambda: default.predict(frame), 25, warmup=3)
        for px, tracker in trackers.items():  # 29 tracked frames + 1 full search each round
            e2e_tracked[px] += latencies(lambda tracker=tracker: default.predict(frame, tracker=tracker), 29, warmup=1)
    detect = latencies(lambda: default.detector.detect(frame), 50, warmup=5)
    extra = {
        "end_to_end_640x480_ms_median": statistics.median(e2e),
        "end_to_end_640x480_ms_p90": float(np.percentile(e2e, 90)),
        "tracked_end_to_end_640x480": {
            f"window_{px}px": {
                "median_ms": statistics.median(ms),
                "p90_ms": float(np.percentile(ms, 90)),
                "mean_ms": statistics.mean(ms),  # full-frame searches included
            }
            for px, ms in e2e_tracked.items()
        },
        "detection_only_640x480_ms_median": statistics.median(detect),
        "threads": torch.get_num_threads(),
    }
    if args.archs:
        extra["architectures"] = arch_rows(args.archs, faces, args.runs, args.crop)
    extra["bundled"] = bundled_rows(frame, faces, args.runs, args.files)
    if args.protocol_faces:
        extra["tracking_protocol"] = tracking_protocol(default, args.data, args.protocol_faces, args.windows)
    report(f"runtime_{args.model}", rows, extra)
    for table in ("architectures", "bundled"):
        if extra.get(table):
            report(f"runtime_{table}", extra[table], {"threads": extra["threads"]})
    e2e_med, e2e_p90 = extra["end_to_end_640x480_ms_median"], extra["end_to_end_640x480_ms_p90"]
    print(
        f"640x480 photo, one face, detect + align + classify: median {e2e_med:.2f} ms (p90 {e2e_p90:.2f}); "
        f"detection alone {extra['detection_only_640x480_ms_median']:.2f} ms"
    )
    for key, t in extra["tracked_end_to_end_640x480"].items():
        print(
            f"tracked, {key}: median {t['median_ms']:.2f} ms (p90 {t['p90_ms']:.2f}, mean with its full-frame "
            f"searches {t['mean_ms']:.2f})"
        )
    if "tracking_protocol" in extra:
        print("tracking on the margin study's PublicTest protocol:", json.dumps(extra["tracking_protocol"]))


if __name__ == "__main__":
    main()
