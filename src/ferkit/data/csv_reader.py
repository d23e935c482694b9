"""Readers for the CSV layouts of FER2013: fer2013.csv(.gz), icml_face_data.csv, train.csv, test.csv.

Pixels are parsed by NumPy's C parser, one call per row; Python never touches a single pixel.
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np

from ferkit.data.dataset import NUM_PIXELS, USAGES, FERDataset, SkippedRow
from ferkit.errors import DataError
from ferkit.labels import NUM_CLASSES
from ferkit.progress import progress

# layout -> the columns it must have (names are compared stripped and lower-cased).
CSV_LAYOUTS: dict[str, tuple[str, ...]] = {
    "fer2013-csv": ("emotion", "pixels", "usage"),
    "icml-csv": ("emotion", "usage", "pixels"),
    "train-csv": ("emotion", "pixels"),
    "test-csv": ("pixels",),
}
_NOT_PIXEL_TEXT = b"0123456789 \t"
# Bounds that no FER2013 file comes near (its csv is 301 MB with 35,888 lines) and that keep a hostile file from
# asking for gigabytes: a gzip bomb stops at MAX_BYTES decompressed, a file of blank lines at MAX_LINES.
MAX_BYTES = 1 << 30
MAX_LINES = 1_000_000


def read_bytes(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (never guessed from the name), streamed and
    bounded: past max_bytes (compressed or not) the read stops with a DataError naming the file."""
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(f"{path}: {size:,} bytes, over the {max_bytes:,}-byte limit for a FER2013 file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = _gunzip_bounded(path, raw, max_bytes)
    if not raw.strip():
        raise DataError(f"{path}: empty file")
    if b"\n" not in raw and b"\r" in raw:  # old Mac line endings (CR only)
        raw = raw.replace(b"\r", b"\n")
    return raw


def _gunzip_bounded(path: Path, raw: bytes, max_bytes: int) -> bytes:
    """gunzip in bounded steps: never more than max_bytes + 1 decompressed bytes exist at once."""
    out, total, data = [], 0, raw
    d = zlib.decompressobj(wbits=31)
    try:
        while True:
            chunk = d.decompress(data, max_bytes + 1 - total)
            out.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise DataError(f"{path}: decompresses past {max_bytes:,} bytes (a gzip bomb?); stopped there")
            if d.unconsumed_tail:
                data = d.unconsumed_tail
            elif d.eof and d.unused_data:  # concatenated gzip members, as gzip.decompress reads them
                data, d = d.unused_data, zlib.decompressobj(wbits=31)
            else:
                break
    except zlib.error as e:
        raise DataError(f"{path}: truncated or corrupt gzip file ({e})") from None
    if not d.eof:
        raise DataError(f"{path}: truncated or corrupt gzip file (it ends mid-stream)")
    return b"".join(out)


def detect_csv_layout(columns: list[str]) -> str | None:
    """Name the layout from the header's columns, or None."""
    cols = tuple(columns)
    for name, expected in CSV_LAYOUTS.items():
        if cols == expected:
            return name
    if set(cols) == {"emotion", "pixels", "usage"}:
        return "fer2013-csv"
    return None


def _header(path: Path, line: bytes, layout: str | None) -> tuple[str, list[str]]:
    columns = [c.strip().strip('"').strip().lower() for c in line.decode("utf-8-sig", "replace").split(",")]
    found = detect_csv_layout(columns)
    if layout is None:
        layout = found
    if layout is None or not set(CSV_LAYOUTS[layout]) <= set(columns):
        wanted = (
            " | ".join(",".join(c) for c in CSV_LAYOUTS.values()) if layout is None else ",".join(CSV_LAYOUTS[layout])
        )
        shown = repr(columns) if len(repr(columns)) <= 200 else repr(columns)[:200] + "..."
        raise DataError(f"{path}, line 1: header has columns {shown}; expected {wanted}")
    return layout, columns


class _Rows:
    """Accumulates parsed rows and the rows skipped, raising or skipping per on_error."""

    def __init__(self, path: Path, on_error: str, n: int) -> None:
        self.path, self.on_error = path, on_error
        self.pixels = np.empty((n, NUM_PIXELS), dtype=np.int32)
        self.labels = np.empty(n, dtype=np.int64)
        self.usage: list[str] = []
        self.origin: list[int] = []
        self.skipped: list[SkippedRow] = []

    def bad(self, lineno: int, reason: str) -> None:
        if self.on_error == "raise":
            raise DataError(f"{self.path}, line {lineno}: {reason}")
        self.skipped.append(SkippedRow(f"{self.path.name}, line {lineno}", reason))

    def add(self, lineno: int, pixels: np.ndarray, label: int, usage: str) -> None:
        k = len(self.origin)
        self.pixels[k], self.labels[k] = pixels, label
        self.usage.append(usage)
        self.origin.append(lineno)


def _parse_label(text: str) -> int | str:
    """The label, or the reason it is not one."""
    try:
        value = int(text)
    except ValueError:
        return f"label {text!r} is not an integer"
    return value if 0 <= value < NUM_CLASSES else f"label {value} is outside 0..{NUM_CLASSES - 1}"


def _parse_pixels(text: bytes) -> np.ndarray | str:
    """(2304,) int32 pixels, or the reason the field is not a valid 48x48 face."""
    stray = text.translate(None, _NOT_PIXEL_TEXT)
    if stray:
        return f"pixels contain non-numeric text {stray[:20].decode('utf-8', 'replace')!r}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        values = np.fromstring(text, dtype=np.int32, sep=" ")
    if values.size != NUM_PIXELS:
        return f"expected {NUM_PIXELS} pixels (48x48), found {values.size}"
    if values.max() > 255:
        return f"pixel value {int(values.max())} is outside 0..255"
    return values


def read_csv(path: str | Path, layout: str | None = None, on_error: str = "raise") -> FERDataset:
    """Read any FER2013 CSV layout into a FERDataset.

    layout: one of CSV_LAYOUTS to force it, or None to detect it from the header.
    on_error: "raise" stops at the first bad row; "skip" leaves it out and records why in `.skipped`.
    """
    path = Path(path)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    raw = read_bytes(path)
    if raw.count(b"\n") > MAX_LINES:
        raise DataError(f"{path}: more than {MAX_LINES:,} lines; FER2013 has 35,888 (is this the right file?)")
    lines = raw.split(b"\n")
    layout, columns = _header(path, lines[0], layout)
    col = {name: columns.index(name) for name in CSV_LAYOUTS[layout]}
    rows = _Rows(path, on_error, sum(1 for line in lines[1:] if line.strip()))
    with progress(f"reading {path.name}", total=len(lines) - 1) as advance:
        for lineno, line in enumerate(lines[1:], start=2):
            line = line.rstrip(b"\r")
            if line.strip():
                _parse_line(rows, lineno, line, col, len(columns))
            if lineno % 4096 == 0:
                advance(4096)
    n = len(rows.origin)
    if n == 0:
        raise DataError(f"{path}: no valid data rows" + (f" ({len(rows.skipped)} skipped)" if rows.skipped else ""))
    return FERDataset(
        images=rows.pixels[:n].astype(np.uint8).reshape(n, 48, 48),
        labels=rows.labels[:n].copy(),
        usage=np.array(rows.usage, dtype="<U11"),
        origin=np.array(rows.origin, dtype=np.int64),
        source=str(path),
        layout=layout,
        skipped=rows.skipped,
    )


def _parse_line(rows: _Rows, lineno: int, line: bytes, col: dict[str, int], n_columns: int) -> None:
    fields = [f.strip().strip(b'"') for f in line.split(b",")]
    if len(fields) != n_columns:
        return rows.bad(lineno, f"expected {n_columns} fields, found {len(fields)}")
    label: int | str = -1
    if "emotion" in col:
        label = _parse_label(fields[col["emotion"]].decode("utf-8", "replace"))
        if isinstance(label, str):
            return rows.bad(lineno, label)
    usage = "Training" if "emotion" in col else "Test"
    if "usage" in col:
        usage = fields[col["usage"]].decode("utf-8", "replace")
        if usage not in USAGES:
            return rows.bad(lineno, f"unknown Usage {usage!r}; expected one of {', '.join(USAGES)}")
    pixels = _parse_pixels(fields[col["pixels"]])
    if isinstance(pixels, str):
        return rows.bad(lineno, pixels)
    rows.add(lineno, pixels, label, usage)
