"""Writing files so that a crash, a kill or a full disk never leaves a truncated one behind (no torch)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ferkit.errors import CheckpointWriteError


def write_atomically(path: Path, write) -> None:
    """write(file) into a temporary file beside path, fsync it, then rename it over path.

    The rename is atomic on one file system, so path always holds either the previous complete file or the new
    complete one: a full disk or a kill mid-write can never leave a truncated resume point behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh random name opened with O_EXCL beside the target: never a planted file or symlink.
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.close(fd)  # reopened by name (the file mkstemp just made, ours alone): writers see a real path
        with tmp.open("wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointWriteError(
            f"could not write {path}: {e.strerror or e}; the previous file there (if any) is intact"
        ) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda f: f.write(text.encode()))
