"""Helpers shared by the benchmarks: machine description, result tables and JSON output."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln
        )
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()}


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """(best seconds over `repeat` runs, last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def batch1_ms(fn, faces, runs: int = 200) -> list[float]:
    """Milliseconds of `runs` batch-1 calls fn(faces[i:i+1]) (N, 48, 48), cycling over the faces, after 10 warm-up
    calls (the first invokes allocate)."""
    for i in range(10):
        fn(faces[i : i + 1])
    out = []
    for i in range(runs):
        t = time.perf_counter()
        fn(faces[i % len(faces) : i % len(faces) + 1])
        out.append((time.perf_counter() - t) * 1000)
    return out


def report(name: str, rows: list[dict], extra: dict | None = None) -> Path:
    """Print rows as a table and write them with the machine to results/<name>.json."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=name)
    for key in rows[0]:
        table.add_column(key, justify="right")
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    Console(width=140).print(table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    payload = {"name": name, "command": " ".join(sys.argv), "machine": machine(), "git": git_rev(), "rows": rows}
    out.write_text(json.dumps({**payload, **(extra or {})}, indent=2))
    print(f"wrote {out}")
    return out
