"""What the CLI prints: library results rendered as rich tables, CSV or plain lines (runtime layer: no torch).

Each function takes the plain data a library function returned, so the commands stay parse-call-print and the
renderings can be tested without running a command.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

WIDTH = 120  # wide enough for the 7 class columns; rich wraps anything wider


def show(*items: Any) -> None:
    """Print rich renderables (tables) or strings to stdout."""
    from rich.console import Console

    console = Console(width=WIDTH)
    for item in items:
        console.print(item)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[str]], justify: str = "left"):
    from rich.table import Table

    t = Table(title=title)
    for col in columns:
        t.add_column(col, justify=justify)
    for row in rows:
        t.add_row(*row)
    return t


def skipped_summary(skipped, shown: int = 5) -> str:
    """Every kind of reason with its count, and the first rows of each: not only the first one."""
    reason_of = [s.reason.split(" (")[0] for s in skipped]
    lines = [f"warning: skipped {len(skipped)} bad rows or files:"]
    for reason, n in Counter(reason_of).most_common():
        where = [s.where for s, r in zip(skipped, reason_of, strict=True) if r == reason][:shown]
        lines.append(f"  {n} x {reason}: {'; '.join(where)}{' ...' if n > shown else ''}")
    return "\n".join(lines)


def data_info(info) -> list:
    """`ferkit data info`: a DatasetInfo (ferkit.data.dataset_info) as a table of counts and the facts."""
    q = info.quality
    rows = [
        (u, *(map(str, counts) if counts is not None else ["-"] * len(info.classes)), str(info.sizes[u]))
        for u, counts in info.counts.items()
    ]
    counts = table(
        f"FER2013 — {info.source} ({info.layout}, {info.rows} rows)",
        ("split", *info.classes, "total"),
        rows,
        justify="right",
    )
    facts = (
        f"exact duplicates: {q.within_training} Training images repeat within Training; "
        f"{q.public_in_training} PublicTest and {q.private_in_training} PrivateTest images also appear "
        f"in Training; {q.private_in_public} PrivateTest images appear in PublicTest; "
        f"{q.conflicting_groups} duplicate groups carry conflicting labels.\n"
        f"near-blank images (pixel std < 3): {q.near_blank} {q.near_blank_by_usage}\n"
        f"skipped rows: {info.skipped}. The official test sets are kept as they are (published numbers include "
        "the duplicates)."
    )
    return [counts, facts, ferplus_text(info.ferplus) if info.ferplus else f"FER+ votes: {info.ferplus_note}"]


def ferplus_text(f) -> str:
    from ferkit.data.ferplus import FERPLUS_EMOTIONS

    usable = ", ".join(f"{u} {n}" for u, n in f.usable_by_usage.items())
    lines = [
        f"FER+ votes: usable rows {usable}; the FER+ plurality agrees with the FER2013 label on "
        f"{f.plurality_agreement:.1%} of the usable labeled rows.",
        "FER+ majority rule (8 classes; single votes dropped, strict majority, unknown/not-a-face dropped):",
    ]
    for u, counts in f.majority_counts.items():
        cells = " ".join(f"{c} {counts[c]}" for c in FERPLUS_EMOTIONS)
        lines.append(f"  {u}: {cells}; dropped {f.majority_dropped[u]}")
    return "\n".join(lines)


def records_csv(records: list[dict], labels: Sequence[str], out: TextIO | None = None) -> None:
    """`ferkit predict --csv`: one row per face (or per input without one), a probability column per label."""
    writer = csv.writer(out or sys.stdout)  # looked up now: a default bound at import outlives a redirect
    writer.writerow(["source", "frame", "face", "x", "y", "w", "h", "score", "expression", *labels])
    for r in records:
        box = r.get("box") or [""] * 4
        probs = [r["probabilities"][c] for c in labels] if r.get("probabilities") else [""] * len(labels)
        writer.writerow([r["source"], r["frame"], r["face"], *box, r.get("score", ""), r["expression"], *probs])


def records_table(records: list[dict]):
    """`ferkit predict`: each face's box, expression, its probability and the runner-up."""
    rows = []
    for r in records:
        name, frame = Path(r["source"]).name, "" if r["frame"] is None else str(r["frame"])
        if r["face"] is None:
            rows.append((name, frame, "-", "-", "no face", "", ""))
            continue
        (top, p), (second, q) = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[:2]
        rows.append((name, frame, str(r["face"]), " ".join(map(str, r["box"])), top, f"{p:.2f}", f"{second} {q:.2f}"))
    return table(None, ("source", "frame", "face", "box", "expression", "p", "runner-up"), rows)


def _one(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def score_report(results: dict[str, list[dict]], target: str) -> list:
    """`ferkit score`: every scored frame, then each input's score."""
    rows = [
        (
            Path(source).name,
            "" if r["frame"] is None else str(r["frame"]),
            f"{r['t']:.2f}",
            _one(r["raw"]),
            _one(r["smoothed"]),
            _one(r["best"]),
            r["expression"] or "no face",
        )
        for source, frames in results.items()
        for r in frames
    ]
    columns = ("source", "frame", "t (s)", "this frame", "steady", "best", "model sees")
    totals = [f"{Path(s).name}: score {frames[-1]['best']:.1f} / 100 for {target}" for s, frames in results.items()]
    return [table(f"Best Actor: {target}", columns, rows, justify="right"), *totals]


def train_summary(summary: dict, run_dir: Path) -> list:
    """`ferkit train`: one row per phase, then where the model is."""
    rows = [
        (
            p["phase"],
            str(p["epochs_run"]),
            str(p["seconds"]),
            str(p.get("hard_examples", "-")),
            f"{p['val']['accuracy']:.4f}",
            f"{p['val']['macro_f1']:.4f}",
        )
        for p in summary["phases"]
    ]
    title = f"{run_dir} ({summary['precision']}, {summary['parameters']['trainable']:,} parameters)"
    columns = ("phase", "epochs", "seconds", "hard examples", "val accuracy", "val macro-F1")
    return [table(title, columns, rows, justify="right"), f"model: {run_dir / 'model.pt'}"]


def models_table(rows: list[dict]):
    """`ferkit models`: ferkit.models.describe_models() as a table."""
    cells = [
        (
            r["model"],
            f"{r['parameters']:,}",
            "x".join(map(str, r["input_size"])),
            f"{r['macs'] / 1e6:.1f}",
            f"{r['flops'] / 1e6:.1f}",
        )
        for r in rows
    ]
    title = "ferkit models (one face, forward pass; FLOPs = 2 x multiply-accumulates)"
    return table(title, ("model", "parameters", "input", "MMAC", "MFLOP"), cells, justify="right")


def ensemble_text(r: dict, tta: bool) -> str:
    """`ferkit ensemble`: each run's PublicTest accuracy, the members chosen on it, and both test figures."""
    lines = [f"  {name}: PublicTest {acc:.4f}" for name, acc in sorted(r["single_public"].items(), key=lambda t: -t[1])]
    if r.get("cv"):  # cv_select: the rules' held-out accuracy inside PublicTest, then the rule it chose
        rules = ", ".join(f"{k} {v:.4f}" for k, v in r["cv"].items())
        lines.append(f"held-out PublicTest accuracy (2-fold, repeated): {rules}")
        lines.append(f"rule chosen: {r['rule']}")
    members = ", ".join(f"{n} x{w}" for n, w in r["members"].items())
    lines.append(f"chosen on PublicTest{' (TTA logits)' if tta else ''}: {members}")
    for usage in ("PublicTest", "PrivateTest"):
        f, u = r[usage], r[usage]["unseen"]
        lines.append(f"{usage}: accuracy {f['accuracy']:.4f} (n {f['n']}); unseen {u['accuracy']:.4f} (n {u['n']})")
    return "\n".join(lines)
