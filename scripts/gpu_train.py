"""Train several seeds of one recipe at once on the `device` tool's GPU, inside a fixed time budget.

The machine is lent for minutes, so the schedule is fitted to the time: the seeds start with `--epochs`, and once
every seed has finished two epochs the per-epoch wall time is known; if the schedule would overrun the budget, the
runs restart at once with as many epochs as fit (a cosine schedule must know its length from the start).
Results come back through $OUT, whose files may not exceed 16 MiB: each model.pt is split into numbered chunks
(`cat sNN.model.pt.* > model.pt` joins them).

There (repository root):
    PYTHONPATH=src python3 scripts/gpu_train.py --csv /tmp/fer/fer2013.csv --config best \
        --seeds 42 43 44 --epochs 300 --budget 420 --out $OUT
Nothing here reads PrivateTest: ferkit train chooses on PublicTest; PrivateTest is evaluated back on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

EPOCH_LINE = re.compile(r"^\[\w+\] epoch\s+(\d+) ")
CHUNK = 15 * 2**20
MARGIN = 30  # seconds kept for the final evaluation, saving and collecting


def _launch(args, epochs: int | None, runs: Path) -> dict[int, tuple[subprocess.Popen, Path, Path]]:
    procs = {}
    for seed in args.seeds:
        run_dir, log = runs / f"s{seed}-e{epochs}", runs / f"s{seed}-e{epochs}.log"
        cmd = [sys.executable, "-m", "ferkit.cli", args.stage, "--config", args.config, "--data", str(args.csv)]
        cmd += ["--seed", str(seed), "--run-dir", str(run_dir), *args.extra]
        cmd += ["--epochs", str(epochs)] if epochs else []
        procs[seed] = (subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT), run_dir, log)
    return procs


def _epoch_times(log: Path) -> list[float]:
    """The seconds of each finished epoch, as ferkit's EpochLine callback logs them ("... 209s")."""
    return [
        float(line.rsplit(None, 1)[-1].rstrip("s")) for line in log.read_text().splitlines() if EPOCH_LINE.match(line)
    ]


def _fit_epochs(args, started: float, launched: float, procs) -> int | None:
    """Once every seed has two epochs: None if the schedule fits the budget, else the number of epochs that does."""
    times = [_epoch_times(log) for _, _, log in procs.values()]
    if any(len(t) < 2 for t in times):
        return None
    per_epoch = max(t[1] for t in times)  # the second epoch: the first pays for warm-up; the slowest seed sets the pace
    startup = max(0.0, time.time() - launched - max(t[0] + t[1] for t in times))  # imports, data, the first steps
    left = args.budget - MARGIN - (time.time() - started)
    if (args.epochs - 2) * per_epoch <= left:
        return None
    return max(1, int((left - startup) / per_epoch) - 1)  # one epoch spare: the first one is slower


def _half_weights(model: Path) -> bytes:
    """model.pt with its floating-point weights in float16: half the bytes, so six fast_fer models (17 MB each in
    float32) come back in one call's 64 MiB; load_state_dict casts them back to the model's float32."""
    import io

    import torch

    ckpt = torch.load(model, map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    ckpt.setdefault("summary", {})["weights_returned_as"] = "float16 (scripts/gpu_train.py --half)"
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def _collect(procs, out: Path, report: dict, half: bool = False) -> None:
    for seed, (proc, run_dir, log) in procs.items():
        model = run_dir / "model.pt"
        entry = {"returncode": proc.returncode, "epoch_seconds": _epoch_times(log), "log_tail": log.read_text()[-1500:]}
        if model.exists():
            data = _half_weights(model) if half else model.read_bytes()
            for i in range(0, len(data), CHUNK):
                (out / f"s{seed}.model.pt.{i // CHUNK:02d}").write_bytes(data[i : i + CHUNK])
            entry["summary"] = json.loads((run_dir / "summary.json").read_text())
        report["seeds"][str(seed)] = entry


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--config", default="best")
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    p.add_argument("--epochs", type=int, default=None, help="planned epochs; shortened to fit the budget")
    p.add_argument("--budget", type=float, default=420, help="seconds for all of it, from the start")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-out")))
    p.add_argument("--runs", type=Path, default=Path("/tmp/ferkit-gpu-runs"))
    p.add_argument("--stage", default="train", choices=("train", "distill"), help="the ferkit stage each seed runs")
    p.add_argument("--half", action="store_true", help="return the weights in float16 (half the bytes)")
    p.add_argument("extra", nargs="*", help="more `ferkit train` flags, after --")
    args = p.parse_args(argv)
    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    args.runs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FERKIT_CACHE", str(args.runs / "cache"))
    # Parse the CSV once, before the seeds start, so that they all read the cache.
    subprocess.run([sys.executable, "-m", "ferkit.cli", "data", "info", "--data", str(args.csv)], check=True)
    report = {"planned_epochs": args.epochs, "epochs": args.epochs, "restarted": False, "seeds": {}}
    launched, procs = time.time(), _launch(args, args.epochs, args.runs)
    while any(proc.poll() is None for proc, _, _ in procs.values()):
        if time.time() - started > args.budget:
            for proc, _, _ in procs.values():
                proc.kill()
            report["killed_at_budget"] = True
            break
        fitted = _fit_epochs(args, started, launched, procs) if args.epochs and not report["restarted"] else None
        if fitted is not None:
            for proc, _, _ in procs.values():
                proc.kill()
            report.update(epochs=fitted, restarted=True)
            launched, procs = time.time(), _launch(args, fitted, args.runs)
        time.sleep(2)
    for proc, _, _ in procs.values():
        proc.wait()
    _collect(procs, args.out, report, args.half)
    report["seconds"] = round(time.time() - started, 1)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "seeds"}))
    for seed, entry in report["seeds"].items():
        val = entry.get("summary", {}).get("phases", [{}])[-1].get("val", {})
        print(f"seed {seed}: rc {entry['returncode']}, epochs {len(entry['epoch_seconds'])}, PublicTest {val}")
    return 0 if all("summary" in e for e in report["seeds"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
