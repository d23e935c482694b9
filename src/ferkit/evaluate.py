"""Evaluation in torch: logits for a uint8 face array (optionally with test-time augmentation)."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

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
    tta: bool = False,
) -> np.ndarray:
    """images: (N, 48, 48) uint8 -> (N, 7) float32 logits; tta averages the logits of the image and its mirror."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.as_tensor(images[i : i + batch_size]).to(device).unsqueeze(1)  # (B, 1, 48, 48) uint8
        x = to_input(x, model.pretrained_cfg, channels_last)
        with autocast_for(precision, device):
            logits = model(x).float()
            if tta:
                logits = (logits + model(torch.flip(x, dims=[3])).float()) / 2
        out.append(logits.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 7), np.float32)
