"""Batched augmentation on tensors: one affine warp for the whole batch, on whatever device holds it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ferkit.config import Augment


def _uniform(n: int, bound: float, g: torch.Generator, device) -> torch.Tensor:
    return (torch.rand(n, generator=g, device=device) * 2 - 1) * bound


def random_affine(x: torch.Tensor, cfg: Augment, g: torch.Generator) -> torch.Tensor:
    """x: (B, C, H, W) float -> same shape, each image rotated, shifted, zoomed and flipped at random.

    Border pixels are repeated outside the image, as Keras's default fill_mode="nearest" does.
    """
    b, dev = x.shape[0], x.device
    angle = _uniform(b, math.radians(cfg.rotation), g, dev)
    # Keras draws the zoom of each axis on its own; >1 shows more of the image (zooms out).
    zx = 1 + _uniform(b, cfg.zoom, g, dev)
    zy = 1 + _uniform(b, cfg.zoom, g, dev)
    flip = (
        torch.where(torch.rand(b, generator=g, device=dev) < 0.5, -1.0, 1.0) if cfg.hflip else torch.ones(b, device=dev)
    )
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(b, 2, 3, device=dev)  # maps output grid coords to input coords, in [-1, 1]
    theta[:, 0, 0], theta[:, 0, 1] = cos * zx * flip, -sin * zy
    theta[:, 1, 0], theta[:, 1, 1] = sin * zx * flip, cos * zy
    theta[:, 0, 2] = _uniform(b, 2 * cfg.shift, g, dev)  # a shift of 0.1 width is 0.2 in [-1, 1] units
    theta[:, 1, 2] = _uniform(b, 2 * cfg.shift, g, dev)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment(x: torch.Tensor, cfg: Augment, g: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W); the identity when cfg asks for nothing."""
    active = cfg.rotation or cfg.shift or cfg.zoom or cfg.hflip
    return random_affine(x, cfg, g) if active else x
