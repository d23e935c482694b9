"""The ONE torch preprocessing: the model contract's normalisation and its crop, used by training, evaluation and
export alike (the runtime's NumPy twin is ferkit.preprocess; a test holds them equal)."""

from __future__ import annotations

import torch


def to_input(x_u8: torch.Tensor, cfg: dict, channels_last: bool) -> torch.Tensor:
    """(B, 1, 48, 48) uint8 (or float gray levels 0..255) -> float32 normalised by the model's own contract."""
    x = x_u8.float() * cfg["scale"]
    mean = torch.tensor(cfg["mean"], device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(cfg["std"], device=x.device).view(1, -1, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def crop_to(x: torch.Tensor, size: int, g: torch.Generator | None = None) -> torch.Tensor:
    """(B, C, 48, 48) -> (B, C, size, size): a random crop per image when g is given (training), else the centre."""
    # Plain ints even while an export traces this: the face is always 48 px, so the centre crop is a constant slice
    # (a traced shape would become int casts that some converters, coremltools among them, cannot fold).
    b, _, h, w = x.shape
    h, w = int(h), int(w)  # the batch stays symbolic (exports keep a dynamic batch axis)
    if size >= h:
        return x
    if g is None:
        top, left = (h - size) // 2, (w - size) // 2
        return x[:, :, top : top + size, left : left + size]
    # One gather for the whole batch: index rows and columns per image.
    top = torch.randint(0, h - size + 1, (b,), generator=g, device=x.device)
    left = torch.randint(0, w - size + 1, (b,), generator=g, device=x.device)
    ar = torch.arange(size, device=x.device)
    rows = (top[:, None] + ar)[:, None, :, None].expand(b, x.shape[1], size, w)
    x = torch.gather(x, 2, rows)
    cols = (left[:, None] + ar)[:, None, None, :].expand(b, x.shape[1], size, size)
    return torch.gather(x, 3, cols)


def ten_crops(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    """The 4 corner crops and the centre crop, each also mirrored: 10 views of (B, C, size, size)."""
    h, w = x.shape[-2:]
    offsets = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), ((h - size) // 2, (w - size) // 2)]
    views = [x[:, :, t : t + size, s : s + size] for t, s in offsets]
    return views + [v.flip(3) for v in views]
