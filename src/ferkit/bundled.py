"""The models shipped in the package, by name: what `Recognizer.default(name)` and every `--model NAME` take.

"default" is the most accurate model, "mobile" the phone-sized student (fastest); one ONNX file each in
ferkit/weights/, with its drop-in phone files beside it. Kept free of numpy so the CLI's parser can name them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ferkit.errors import ModelFileError

DEFAULT_MODEL = "ferkit_default.onnx"
BUNDLED: dict[str, str] = {"default": DEFAULT_MODEL, "mobile": "ferkit_mobile.onnx"}


def bundled_model_path(name: str = "default") -> Path:
    """The file of a bundled model by name (it may be absent from a partial install: the caller checks)."""
    if name not in BUNDLED:
        raise ModelFileError(f"no bundled model named {name!r}; bundled: {', '.join(BUNDLED)}")
    return Path(str(files("ferkit") / "weights" / BUNDLED[name]))


def bundled_name(path: str | Path) -> str | None:
    """The name under which a file is bundled (`ferkit_mobile.onnx` -> "mobile"), or None: what `ferkit bundle X.onnx`
    uses to pick the card and golden outputs it rewrites."""
    return next((name for name, file in BUNDLED.items() if Path(path).name == file), None)
