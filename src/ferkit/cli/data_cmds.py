"""`ferkit data` commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="FER2013 file or folder (default: $FERKIT_DATA, then ../shared/datasets/fer2013)")
    p.add_argument("--layout", help="force the layout: fer2013-csv, icml-csv, train-csv, test-csv or folder")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="bad rows: stop (default) or skip")
    p.add_argument("--no-cache", action="store_true", help="parse the source again instead of using the cache")
    p.add_argument("--ferplus", help="FER+ fer2013new.csv (default: $FERKIT_FERPLUS, then ../shared/datasets/ferplus)")


def _load(args: argparse.Namespace):
    from ferkit.data import load_fer2013
    from ferkit.report import skipped_summary

    ds = load_fer2013(args.data, layout=args.layout, on_error=args.on_error, use_cache=not args.no_cache)
    if ds.skipped:
        print(skipped_summary(ds.skipped), file=sys.stderr)
    return ds


def cmd_data_info(args: argparse.Namespace) -> int:
    from ferkit import report
    from ferkit.data import dataset_info

    info = dataset_info(_load(args), args.ferplus)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        report.show(*report.data_info(info))
    return 0


def cmd_data_plot(args: argparse.Namespace) -> int:
    from ferkit import plots

    ds = _load(args)
    for path in plots.data_figures(ds, Path(args.out), args.per_class):
        print(path)
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from ferkit.data.download import download

    print(download(args.dest))
    return 0
