"""`ferkit data` commands."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ferkit.labels import CLASS_NAMES


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="FER2013 file or folder (default: $FERKIT_DATA, then ../shared/datasets/fer2013)")
    p.add_argument("--layout", help="force the layout: fer2013-csv, icml-csv, train-csv, test-csv or folder")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="bad rows: stop (default) or skip")
    p.add_argument("--no-cache", action="store_true", help="parse the source again instead of using the cache")
    p.add_argument("--ferplus", help="FER+ fer2013new.csv (default: $FERKIT_FERPLUS, then ../shared/datasets/ferplus)")


def skipped_summary(skipped, shown: int = 5) -> str:
    """Every kind of reason with its count, and the first rows of each: not only the first one."""
    from collections import Counter

    kinds = Counter(s.reason.split(" (")[0] for s in skipped)
    lines = [f"warning: skipped {len(skipped)} bad rows or files:"]
    for reason, n in kinds.most_common():
        where = [s.where for s in skipped if s.reason.split(" (")[0] == reason][:shown]
        lines.append(f"  {n} x {reason}: {'; '.join(where)}{' ...' if n > shown else ''}")
    return "\n".join(lines)


def _load(args: argparse.Namespace):
    from ferkit.data import load_fer2013

    ds = load_fer2013(args.data, layout=args.layout, on_error=args.on_error, use_cache=not args.no_cache)
    if ds.skipped:
        print(skipped_summary(ds.skipped), file=sys.stderr)
    return ds


def cmd_data_info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ferkit.data import quality_report

    ds = _load(args)
    report = quality_report(ds)
    usages = ds.usage_names()
    ferplus, ferplus_note = _ferplus_facts(ds, args.ferplus)
    if args.json:
        counts = {u: ds.subset(u).class_counts().tolist() for u in usages}
        print(
            json.dumps(
                {
                    "source": ds.source,
                    "layout": ds.layout,
                    "rows": len(ds),
                    "classes": list(CLASS_NAMES),
                    "counts": counts,
                    "quality": asdict(report),
                    "skipped": len(ds.skipped),
                    "ferplus": asdict(ferplus) if ferplus else ferplus_note,
                },
                indent=2,
            )
        )
        return 0
    table = Table(title=f"FER2013 — {ds.source} ({ds.layout}, {len(ds)} rows)")
    for col in ("split", *CLASS_NAMES, "total"):
        table.add_column(col, justify="right")
    for u in usages:
        part = ds.subset(u)
        counts = part.class_counts()
        cells = [str(int(c)) for c in counts] if part.labeled else ["-"] * len(CLASS_NAMES)
        table.add_row(u, *cells, str(len(part)))
    console = Console(width=max(Console().width, 110))
    console.print(table)
    console.print(
        f"exact duplicates: {report.within_training} Training images repeat within Training; "
        f"{report.public_in_training} PublicTest and {report.private_in_training} PrivateTest images also appear "
        f"in Training; {report.private_in_public} PrivateTest images appear in PublicTest; "
        f"{report.conflicting_groups} duplicate groups carry conflicting labels.\n"
        f"near-blank images (pixel std < 3): {report.near_blank} {report.near_blank_by_usage}\n"
        f"skipped rows: {len(ds.skipped)}. The official test sets are kept as they are (published numbers include "
        "the duplicates)."
    )
    console.print(_ferplus_text(ferplus) if ferplus else f"FER+ votes: {ferplus_note}")
    return 0


def _ferplus_facts(ds, ferplus_path: str | None):
    """(FerPlusFacts, "") when FER+ votes are at hand and belong to ds, else (None, why not)."""
    from ferkit.data import ferplus_facts, join_ferplus, locate_ferplus, read_ferplus
    from ferkit.errors import DataError, DataNotFoundError

    try:
        joined = ds if ds.votes is not None else join_ferplus(ds, read_ferplus(locate_ferplus(ferplus_path)))
    except DataNotFoundError:
        return None, "not found (--ferplus PATH or FERKIT_FERPLUS)"
    except DataError as e:
        return None, str(e)
    return ferplus_facts(joined), ""


def _ferplus_text(f) -> str:
    from ferkit.data import FERPLUS_EMOTIONS

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


def cmd_data_plot(args: argparse.Namespace) -> int:
    from ferkit import plots

    ds = _load(args)
    out = Path(args.out)
    counts = {u: ds.subset(u).class_counts() for u in ds.usage_names() if ds.subset(u).labeled}
    written = [plots.class_histogram(counts, out / "class_histogram.png")]
    labeled = ds.select(ds.labels >= 0)
    written.append(plots.sample_grid(labeled.images, labeled.labels, out / "samples.png", per_class=args.per_class))
    for path in written:
        print(path)
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from ferkit.data.download import download

    print(download(args.dest))
    return 0
