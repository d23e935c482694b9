"""Checkpoint I/O: model.pt (weights + the config that rebuilds them + the data contract) and Lightning .ckpt files
of ferkit runs. Loading never runs code (weights_only)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from ferkit.atomic import write_atomically
from ferkit.errors import CheckpointError
from ferkit.models.registry import create_model


def load_checkpoint(path: str | Path) -> dict:
    """torch.load with weights_only=True: tensors and plain containers only, so opening a file never runs code.

    A pickle that names any other callable (e.g. os.system) is refused before anything in it executes."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        # torch names the offending global ("Unsupported global: GLOBAL posix.system"); say that, not its advice
        reason = next((ln for ln in lines if "Unsupported" in ln), lines[0] if lines else type(e).__name__)[:200]
        raise CheckpointError(
            f"{path}: refused: it holds objects other than tensors and plain data, which could run code when "
            f"opened ({reason}); ferkit loads weights only"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({str(e).splitlines()[0][:200]})") from None


def save_model(model, config: dict, summary: dict, path: Path) -> None:
    """The final weights with the resolved recipe (a plain dict) that rebuilds them and the model's data contract."""
    ckpt = {
        "model": config["model"],
        "model_args": config.get("model_args", {}),
        "pretrained_cfg": model.pretrained_cfg,
        "config": config,
        "summary": summary,
        "state_dict": model.state_dict(),
    }
    write_atomically(Path(path), partial(torch.save, ckpt))


def load_model(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from model.pt (or a Lightning .ckpt of a ferkit run); returns (model, checkpoint dict)."""
    ckpt = load_checkpoint(path)
    if "state_dict" in ckpt and "model" not in ckpt:  # Lightning checkpoint
        config = ckpt["hyper_parameters"]["config"]
        state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
        ckpt = {
            "model": config["model"],
            "model_args": config.get("model_args", {}),
            "config": config,
            "state_dict": state,
        }
    model = create_model(ckpt["model"], **ckpt.get("model_args", {}))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt
