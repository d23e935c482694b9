"""ferkit's exceptions: every failure a user can cause names the file, row or value at fault."""

from __future__ import annotations


class FerkitError(Exception):
    """Base class of every error ferkit raises on purpose."""


class DataError(FerkitError, ValueError):
    """A dataset file or folder is malformed; the message names the file and the row."""


class DataNotFoundError(FerkitError, FileNotFoundError):
    """FER2013 could not be found; the message says how to get it."""


class MissingExtraError(FerkitError, ImportError):
    """An optional dependency is missing; the message gives the exact pip command."""


def require(module: str, extra: str) -> object:
    """Import an optional dependency, or fail with the `pip install ferkit[extra]` that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - exercised through a mocked import in tests
        raise MissingExtraError(
            f"'{module}' is needed for this and is not installed: pip install 'ferkit[{extra}]'"
        ) from e
