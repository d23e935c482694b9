"""What a FER2013 face is: one of seven expressions (in the dataset's own label order), 48 x 48 gray pixels."""

from __future__ import annotations

# FER2013's integer labels index this tuple: 0 angry ... 6 neutral.
CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES: int = len(CLASS_NAMES)
# The side of every FER2013 face, and of every exported model's input: the one place the number is written.
FACE_SIZE: int = 48


def label_to_name(label: int) -> str:
    """0..6 -> expression name."""
    if not 0 <= int(label) < NUM_CLASSES:
        raise ValueError(f"label {label} is outside 0..{NUM_CLASSES - 1}")
    return CLASS_NAMES[int(label)]


def name_to_label(name: str) -> int:
    """Expression name (case-insensitive) or a digit string -> 0..6."""
    key = name.strip().lower()
    if key.isdigit():
        label_to_name(int(key))  # validates the range
        return int(key)
    try:
        return CLASS_NAMES.index(key)
    except ValueError:
        raise ValueError(f"unknown expression {name!r}; expected one of {', '.join(CLASS_NAMES)}") from None
