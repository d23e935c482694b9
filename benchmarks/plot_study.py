"""The accuracy-per-CPU-minute figure of docs/RESULTS.md: PublicTest accuracy against training minutes for every
candidate, from its run folder's metrics (per-epoch val_acc and epoch times) or its committed run.json.

python benchmarks/plot_study.py [--run NAME=RUN_DIR ...] [--committed results/runs/*] [--point NAME=MINUTES,ACC ...] \
    --out docs/figures/x.png

--committed: every committed prediction file's run.json is a row of the printed table (benchmarks/results/study.json)
and, when it trained on this project's CPUs and recorded its wall time, a point (wall minutes, PublicTest accuracy of
its kept weights); runs trained on a lent GPU are rows without a point.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report


def curve(run_dir: Path) -> tuple[list[float], list[float]]:
    """(cumulative minutes, PublicTest accuracy) per epoch, from the run's log lines (`... val_acc A ... Ns`)."""
    log = Path(str(run_dir) + ".log")
    minutes, accs, total = [], [], 0.0
    if log.is_file():
        for line in log.read_text().splitlines():
            m = re.search(r"val_acc ([0-9.]+) .* (\d+)s$", line)
            if m:
                total += int(m.group(2)) / 60
                minutes.append(total)
                accs.append(float(m.group(1)))
        return minutes, accs
    rows = list(csv.DictReader((run_dir / "0-main" / "metrics.csv").open()))
    accs = [float(r["val_acc"]) for r in rows if r.get("val_acc")]
    done = run_dir / "0-main" / "done.json"  # no log of its own (a queue's shared log): the phase's mean epoch time
    per_epoch = json.loads(done.read_text())["seconds"] / 60 / max(len(accs), 1) if done.is_file() else None
    if per_epoch is None:
        raise SystemExit(f"{run_dir}: no {log.name} and no 0-main/done.json to time its epochs")
    return [per_epoch * (i + 1) for i in range(len(accs))], accs


def host_kind(machine: dict | None) -> str:
    """The kind of machine a run's minutes were measured on: they are only comparable within one kind."""
    machine = machine or {}
    if machine.get("gpu"):
        return "gpu"
    name = machine.get("cpu") or ""
    cpu = next((kind for kind in ("EPYC", "Xeon") if kind in name), "other CPU")
    return f"{cpu} {'bf16' if machine.get('native_bf16') else 'fp32'}"


def committed_rows(folders: list[str]) -> list[dict]:
    """One row per committed run folder, from its run.json (what the prediction file recorded)."""
    rows = []
    for folder in folders:
        info = json.loads((Path(folder) / "run.json").read_text())
        recipe = info.get("recipe", {})
        rows.append(
            {
                "run": info["name"],
                "model": info["model"],
                "parameters": info.get("parameters"),
                "MFLOP": info.get("mflop"),
                "epochs": info.get("epochs"),
                "wall minutes": info.get("wall_minutes"),
                "PublicTest": round(info["public_accuracy"], 4),
                "teachers": len(recipe.get("teacher_logits", [])) + len(recipe.get("teachers", [])),
                "host": host_kind(info.get("machine")),
            }
        )
    return rows


MARKERS = {
    "EPYC bf16": "o",
    "Xeon bf16": "s",
    "EPYC fp32": "^",
    "Xeon fp32": "v",
    "other CPU bf16": "D",
    "other CPU fp32": "P",
}


def plot_committed(ax, rows: list[dict], label_best: int = 5) -> float:
    """CPU runs as points (marker: kind of host, colour: plain labels or teachers' soft targets); runs trained on
    a lent GPU stay in the table only, since their minutes are not CPU minutes. The best `label_best` are named.
    Returns the lowest accuracy drawn."""
    cpu_rows = [r for r in rows if r["wall minutes"] and r["host"] in MARKERS]
    for host, marker in MARKERS.items():
        for distilled, colour in ((False, "tab:blue"), (True, "tab:orange")):
            pts = [r for r in cpu_rows if r["host"] == host and bool(r["teachers"]) == distilled]
            if pts:
                label = f"{host} host, {'distilled' if distilled else 'plain labels'}"
                xs, ys = [r["wall minutes"] for r in pts], [r["PublicTest"] for r in pts]
                ax.scatter(xs, ys, marker=marker, c=colour, s=60, label=label, zorder=3, edgecolors="k")
    for r in sorted(cpu_rows, key=lambda r: -r["PublicTest"])[:label_best]:
        ax.annotate(
            r["run"], (r["wall minutes"], r["PublicTest"]), fontsize=6, xytext=(4, 2), textcoords="offset points"
        )
    return min((r["PublicTest"] for r in cpu_rows), default=1.0)


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR (its .log beside it gives the times)")
    ap.add_argument("--point", action="append", default=[], help="NAME=MINUTES,ACCURACY (a finished run)")
    ap.add_argument("--committed", nargs="*", default=[], help="committed run folders (results/runs/*)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    fig, ax = plt.subplots(figsize=(9.5, 4.2))
    rows = committed_rows(args.committed)
    if rows:
        report("study", rows)
    lowest = plot_committed(ax, rows)
    for spec in args.run:
        name, path = spec.split("=", 1)
        x, y = curve(Path(path))
        ax.plot(x, y, marker="o", ms=3, label=name)
    for spec in args.point:
        name, xy = spec.split("=", 1)
        x, y = (float(v) for v in xy.split(","))
        ax.scatter([x], [y], marker="*", s=120, label=name, zorder=3)
    # an EMA curve starts near chance; the runs differ by tenths of a point up here, so the axis starts below them
    ax.set_ylim(bottom=min(0.62, lowest - 0.01))
    ax.set_xlabel("training minutes on the 2-core CPU (wall time, as logged)")
    ax.set_ylabel("PublicTest accuracy (single crop)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: points fill the axes
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
