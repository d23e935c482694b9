"""Does ONNX Runtime's thread spinning slow the game's frame path? Two sessions of the bundled default, one with
`session.intra_op.allow_spinning` 1 (ONNX Runtime's default) and one with 0, each behind its own FaceTracker (128 px
window); tracked 640x480 frames and single faces, interleaved round by round.

python benchmarks/probe_spinning.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runtime import latencies, photo_640x480
from common import report

from ferkit.bundled import bundled_model_path
from ferkit.faces import FaceTracker
from ferkit.runtime import Recognizer


def recognizer(spin: str) -> Recognizer:
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    return Recognizer.from_file(bundled_model_path(), session_options=opts)


def main() -> None:
    frame = photo_640x480()
    recs = {"spinning (ORT default)": recognizer("1"), "no spinning": recognizer("0")}
    trackers = {k: FaceTracker(r.detector, window_px=128) for k, r in recs.items()}
    for k, r in recs.items():
        r.predict(frame, tracker=trackers[k])  # the whole-frame search that starts tracking
    frames, faces = {k: [] for k in recs}, {k: [] for k in recs}
    for _ in range(4):
        for k, r in recs.items():
            frames[k] += latencies(lambda r=r, k=k: r.predict(frame, tracker=trackers[k]), 29, warmup=1)
            faces[k] += latencies(lambda r=r: r.logits(frame[:48, :48, 0][None]), 50)
    rows = [
        {
            "threads": k,
            "tracked frame median ms": statistics.median(frames[k]),
            "face median ms": statistics.median(faces[k]),
        }
        for k in recs
    ]
    report("probe_spinning", rows)


if __name__ == "__main__":
    main()
