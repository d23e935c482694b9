"""Progress bars (rich) that stay silent when nobody is watching a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Advance(Protocol):
    def __call__(self, n: float = 1) -> None: ...


def _enabled() -> bool:
    flag = os.environ.get("FERKIT_PROGRESS")
    if flag is not None:
        return flag not in ("0", "", "false")
    return sys.stderr.isatty()


@contextmanager
def progress(description: str, total: float | None) -> Iterator[Advance]:
    """`with progress("reading", total=n) as advance: advance(k)`; a no-op off a terminal."""
    if not _enabled():
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"))
    # On stderr: stdout carries results (`ferkit predict clip.mp4 --csv > out.csv` stays a clean CSV).
    # FERKIT_PROGRESS=1 means "draw it" even when stderr is a pipe (a log, a test); else rich decides.
    console = Console(stderr=True, force_terminal=os.environ.get("FERKIT_PROGRESS") not in (None, "0", "", "false"))
    with Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), transient=True, console=console) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
