"""Batched augmentation on tensors: one affine warp for the whole batch, on whatever device holds it."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ferkit.training.config import Augment


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


def random_erasing(x: torch.Tensor, p: float, g: torch.Generator, area=(0.02, 0.2)) -> torch.Tensor:
    """Zero one random rectangle (2-20% of the image) in a fraction p of the batch; masks built for all at once."""
    if p <= 0:
        return x
    b, _, h, w = x.shape
    dev = x.device
    frac = area[0] + torch.rand(b, generator=g, device=dev) * (area[1] - area[0])
    aspect = torch.exp((torch.rand(b, generator=g, device=dev) - 0.5) * 1.6)  # ~0.45 .. 2.2
    eh = (torch.sqrt(frac * aspect) * h).clamp(1, h).long()
    ew = (torch.sqrt(frac / aspect) * w).clamp(1, w).long()
    top = (torch.rand(b, generator=g, device=dev) * (h - eh + 1)).long()
    left = (torch.rand(b, generator=g, device=dev) * (w - ew + 1)).long()
    ys, xs = torch.arange(h, device=dev), torch.arange(w, device=dev)
    inside = (
        (ys[None, :, None] >= top[:, None, None])
        & (ys[None, :, None] < (top + eh)[:, None, None])
        & (xs[None, None, :] >= left[:, None, None])
        & (xs[None, None, :] < (left + ew)[:, None, None])
    )
    chosen = torch.rand(b, generator=g, device=dev) < p
    return x.masked_fill((inside & chosen[:, None, None])[:, None], 0.0)


def mixup(x: torch.Tensor, alpha: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Blend the batch with a shuffled copy of itself (Zhang et al., 2018): lam * x + (1 - lam) * x[partner].

    x (B, C, H, W) -> (mixed x, partner indices (B,), lam); one lam ~ Beta(alpha, alpha) per batch, drawn from g
    (through numpy: torch's Beta takes no generator) so that a resumed run mixes the same way.
    """
    if alpha <= 0:
        return x, torch.arange(x.shape[0], device=x.device), 1.0
    partner = torch.randperm(x.shape[0], generator=g, device=g.device).to(x.device)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g, device=g.device))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    return lam * x + (1 - lam) * x[partner], partner, lam
