"""Argument types shared by the commands."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """`--every 0` would divide by zero and `--every -1` sample nothing: refuse both while parsing."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 = every frame), got {value}")
    return value


def positive_float(text: str) -> float:
    """A duration or a size: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


MODEL_HELP = "a bundled model by name (default, mobile) or an exported ferkit .onnx (default: default)"


def recognizer(model: str | None):
    """`--model`: a bundled model's name or an exported ferkit .onnx (the runtime: no torch)."""
    from ferkit.runtime import Recognizer

    return Recognizer.load(model)
