"""Evaluation in torch: logits for a uint8 face array (optionally with test-time augmentation)."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from ferkit.augment import crop_to, ten_crops
from ferkit.lit import to_input


def autocast_for(precision: str, device: torch.device):
    """The autocast context matching a Lightning precision string."""
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    return nullcontext()


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    images: np.ndarray,
    batch_size: int = 512,
    precision: str = "32-true",
    channels_last: bool = True,
    tta: bool | str = False,
) -> np.ndarray:
    """images: (N, 48, 48) uint8 -> (N, 7) float32 logits of the centre crop the model takes.

    tta: False; "flip" (or True): average with the mirror image; "tencrop": average 4 corners + centre, each mirrored.
    """
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.as_tensor(images[i : i + batch_size]).to(device).unsqueeze(1)  # (B, 1, 48, 48) uint8
        x = to_input(x, model.pretrained_cfg, channels_last)
        size = model.pretrained_cfg["input_size"][-1]
        with autocast_for(precision, device):
            if tta == "tencrop":
                views = ten_crops(x, size)
            else:
                views = [crop_to(x, size)] + ([crop_to(x, size).flip(3)] if tta else [])
            logits = torch.stack([model(v).float() for v in views]).mean(0)
        out.append(logits.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 7), np.float32)
