"""Training recipes: validated dataclasses (pydantic) with defaults, filled from YAML, overridden by flags, saved with
each run. Recipes ship in the package (`ferkit/configs/*.yaml`) and are chosen by name (`--config best`)."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as _pydantic_dataclass

from ferkit.errors import ConfigError, require

# Unknown keys are errors and values are checked against their types (`--set lr=1e-3` is a float,
# `--set batch_size=abc` is refused naming the field).
dataclass = _pydantic_dataclass(config=ConfigDict(extra="forbid"))


@dataclass
class Augment:
    """Keras ImageDataGenerator meaning: rotation in degrees, shift and zoom as fractions of the side."""

    rotation: float = 0.0
    shift: float = 0.0
    zoom: float = 0.0
    hflip: bool = False
    erasing: float = 0.0  # probability of random erasing per image
    mixup: float = 0.0  # alpha of mixup's Beta(alpha, alpha) blend weight; 0: off ("light" mixup is 0.1-0.4)


@dataclass
class Phase:
    """One fit: its data ("train", or "hard": the training images the model still gets wrong) and callbacks."""

    name: str = "base"
    data: str = "train"
    epochs: int = 100
    lr: float | None = None  # None: keep the optimizer's learning rate from the recipe
    augment: Augment = field(default_factory=Augment)
    early_stop_patience: int | None = 10  # on the monitored validation metric; None: no early stop
    plateau_patience: int = 5  # ReduceLROnPlateau on validation loss
    plateau_factor: float = 0.9
    hard_val_fraction: float = 0.2  # "hard" phases: the part of the hard examples held out to validate


@dataclass
class TrainConfig:
    name: str = "seed"
    model: str = "seed_vgg"
    model_args: dict[str, Any] = field(default_factory=dict)
    split: str = "official"  # official | notebook
    seed: int = 42
    batch_size: int = 64
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    label_smoothing: float = 0.0
    scheduler: str = (
        "plateau"  # plateau (ReduceLROnPlateau on val loss, the seed's) | cosine | linear (per step, after warm-up)
    )
    warmup_epochs: float = 0.0
    ema_decay: float | None = None  # exponential moving average of the weights, used for validation and kept
    # distillation (`ferkit distill`): teachers' model.pt files, KL weight, softening temperature
    teachers: list[str] = field(default_factory=list)
    # distillation from committed prediction files (`ferkit distill --teacher-logits results/runs/A ...`):
    # the runs' Training logits, ensembled (mean probability), are the soft targets; no teacher is loaded
    teacher_logits: list[str] = field(default_factory=list)
    # FER+ votes as soft targets: (1 - w) * one-hot + w * the image's FER+ vote shares (Training rows only)
    ferplus_weight: float = 0.0
    ferplus: str | None = None  # fer2013new.csv (default: found like FER2013)
    # the classes trained and scored: "fer2013" (its seven labels) or "ferplus" (FER+'s eight, the FER+ protocol:
    # Training by its most-voted emotion, PublicTest/PrivateTest by the majority rule; ferplus_weight then mixes
    # the one-hot label with the 8-class vote shares, 1 = the vote distribution; ferkit.data.ferplus_labelled)
    labels: Literal["fer2013", "ferplus"] = "fer2013"
    distill_alpha: float = 0.7
    distill_temperature: float = 4.0
    # progressive self-knowledge distillation (PS-KD, Kim et al., ICCV 2021), a label-noise remedy from the plain
    # labels alone: each Training image's target is (1 - a) * its label + a * the model's own prediction for it in
    # the previous epoch, a rising linearly from 0 at the phase's first epoch to self_distill at its end. 0: off.
    self_distill: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    # sharpness-aware minimisation (SAM, Foret et al., ICLR 2021), a label-noise remedy that spends compute rather
    # than labels: each step's gradient is taken at the weights moved sam_rho (L2) up the loss gradient, that ascent
    # gradient taken on the first sam_fraction of the batch (m-sharpness: a sub-batch costs less and, in the paper,
    # generalises no worse). 0: off. Label training only (`ferkit train`, with or without self_distill).
    sam_rho: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    sam_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.25
    # k-fold teachers (issue 18): folds > 0 trains on the Training images outside fold `fold` (duplicate groups kept
    # whole, ferkit.data.kfold_assignment with fold_seed); `ferkit predictions` of all the folds' models writes one
    # run whose Training logits are out of fold. PublicTest still chooses everything.
    folds: int = 0
    fold: int = 0
    fold_seed: int = 0
    monitor: str = "val_acc"
    init: str | None = None  # fine-tune: start from this model.pt (same model and model_args)
    qat: bool = False  # quantisation-aware fine-tuning for the static int8 export (ferkit.training.qat)
    phases: list[Phase] = field(default_factory=lambda: [Phase()])
    # engine
    precision: str = "auto"  # auto: bf16-mixed where the processor computes bf16 natively, else 32-true
    channels_last: bool = True
    compile: bool = False
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    threads: int | None = None  # torch intra-op threads; None: torch's default
    data: str | None = None
    out: str = "runs"
    limit: int | None = None  # use only the first N images of each split (smoke tests)


def _build(cls, values: dict[str, Any]):
    """A validated dataclass from a dict (nested phases and augment too); every problem is named by its key."""
    try:
        return cls(**values)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(recipe)'}: "
            + ("unknown key" if err["type"] == "unexpected_keyword_argument" else err["msg"])
            + (f" (got {err['input']!r:.60})" if err["type"] != "unexpected_keyword_argument" else "")
            for err in e.errors()
        )
        raise ConfigError(f"invalid recipe: {problems}") from None
    except TypeError as e:  # not a mapping where one was expected
        raise ConfigError(f"invalid recipe: {e}") from None


def recipe_names() -> list[str]:
    """The recipes shipped in the package, by name."""
    return sorted(
        p.name.removesuffix(".yaml") for p in files("ferkit").joinpath("configs").iterdir() if p.name.endswith(".yaml")
    )


def recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file: an existing path, else a recipe of the package by name (`best`, `fast`, `mobile`, ...)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = Path(str(files("ferkit").joinpath("configs", f"{path.name.removesuffix('.yaml')}.yaml")))
    if shipped.is_file():
        return shipped
    raise ConfigError(f"no recipe {str(name_or_path)!r}: not a file, nor one of {', '.join(recipe_names())}")


def _parse_value(text: str) -> Any:
    yaml = require("yaml", "train")
    return yaml.safe_load(text)


def apply_override(values: dict[str, Any], assignment: str) -> None:
    """`key=value` or `phases.1.epochs=5` into a nested dict (values parsed as YAML)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not key=value")
    key, text = assignment.split("=", 1)
    parts = key.strip().split(".")
    node: Any = values
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = _parse_value(text)
    else:
        node[last] = _parse_value(text)


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, epochs: int | None = None
) -> TrainConfig:
    """Defaults <- YAML recipe <- `key=value` overrides; `epochs` caps every phase (`ferkit train --epochs`)."""
    values: dict[str, Any] = {}
    if path is not None:
        yaml = require("yaml", "train")
        source = recipe_path(path)
        try:
            values = yaml.safe_load(source.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML ({e})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: a recipe is a mapping of keys to values")
    for o in overrides or []:
        apply_override(values, o)
    cfg = _build(TrainConfig, values)
    for phase in cfg.phases if epochs is not None else []:
        phase.epochs = epochs
    return cfg


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
