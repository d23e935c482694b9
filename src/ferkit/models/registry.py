"""Models made by name (after timm): `@register_model` on a builder, `create_model(name, **overrides)`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a builder under its function name."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **overrides: Any):
    """Build a registered model; keyword overrides reach the builder (e.g. dropout=0.5).

    labels: the classes of the head, in output order (default FER2013's seven): the head gets one output each and
    the model's data contract names them, so a model file trained on FER+'s eight classes says so itself."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    labels = overrides.pop("labels", None)
    if labels is not None:
        if not labels or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
            raise ValueError(f"labels must be distinct class names, got {labels!r:.100}")
        overrides["num_classes"] = len(labels)
    try:
        model = _REGISTRY[name](**overrides)
    except TypeError as e:  # an override the builder does not take
        raise ValueError(f"model {name!r} cannot be built with {sorted(overrides)}: {e}") from None
    if labels is not None:
        model.pretrained_cfg = {**model.pretrained_cfg, "labels": tuple(labels)}
    model.model_name = name
    return model


def create_model_from_metadata(name: str, metadata: dict) -> Any:
    """The untrained architecture a ferkit model file names: `name` built with the `model_args` of the recipe its
    metadata stores (a 44 px fast_fer is not the registered 40 px one)."""
    return create_model(name, **json.loads(metadata.get("recipe", "{}")).get("model_args", {}))
