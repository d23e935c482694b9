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


class ModelFileError(FerkitError, ValueError):
    """A model file that cannot be loaded, lacks ferkit's metadata, or whose contract does not fit its graph."""


class ConfigError(FerkitError, ValueError):
    """A recipe value of the wrong type, an unknown key, or a recipe that cannot be found."""


class RunDirBusy(FerkitError, RuntimeError):
    """Another training process is writing into the same run folder."""


class ImageError(FerkitError, ValueError):
    """An input that is not a usable image; the message says what is wrong with it."""


class ExportError(FerkitError, RuntimeError):
    """An export that failed, or whose output does not match torch."""


class PredictionFileError(FerkitError, ValueError):
    """A prediction file that is malformed, or was made on another data file than the one at hand."""


class CheckpointError(FerkitError, ValueError):
    """A checkpoint that is missing, unreadable, or holds more than weights and plain data."""


class OnnxRebuildError(FerkitError, ValueError):
    """The ONNX graph's weights do not fit the architecture its metadata names."""


class CheckpointWriteError(FerkitError, OSError):
    """A checkpoint could not be written (e.g. a full disk); the previous one is intact."""


class UnknownSession(FerkitError, KeyError):
    """A session id the server did not issue, or one that expired."""


def require(module: str, extra: str) -> object:
    """Import an optional dependency, or fail with the `pip install ferkit[extra]` that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - exercised through a mocked import in tests
        raise MissingExtraError(
            f"'{module}' is needed for this and is not installed: pip install 'ferkit[{extra}]'"
        ) from e


# An optional dependency's top-level module -> the extra that installs it.
EXTRA_OF = {
    "torch": "train",
    "lightning": "train",
    "yaml": "train",
    "pydantic": "train",
    "onnx": "export",
    "onnxscript": "export",
    "litert_torch": "export",
    "ai_edge_litert": "export",
    "ai_edge_quantizer": "export",
    "coremltools": "coreml",
    "fastapi": "serve",
    "uvicorn": "serve",
    "multipart": "serve",
    "python_multipart": "serve",
    "matplotlib": "plot",
    "kaggle": "kaggle",
}


def extra_of(module: str | None) -> str | None:
    """`pip install 'ferkit[extra]'` for a missing optional module (any submodule of it), else None."""
    top = (module or "").split(".")[0]
    return f"pip install 'ferkit[{EXTRA_OF[top]}]'" if top in EXTRA_OF else None
