"""Quantisation-aware fine-tuning for the static int8 export (`onnx-int8`).

Post-training static quantisation of `vgg_fer` flips the top expression on about 1% of faces: the faces whose two best
classes are within a fraction of a percent, pushed over by int8 rounding of weights and of activations.
Fine-tuning with that rounding simulated in the forward pass lets the network move its decisions away from the
rounding, and ends with weights that lie exactly on the int8 grid ONNX Runtime will use. Measured on
vgg_fer (docs/RESULTS.md): it makes int16-activation files agree with torch on 100% of PublicTest, but did not lift
int8 activations (99.0%).

What is simulated is what `ferkit.export.export_onnx_int8` produces:
- BatchNorm folded into the convolution before it (ONNX export folds it the same way);
- each Conv weight symmetric per output channel, scale = max|w| / 127 (onnxruntime's int8 symmetric range);
- each Conv input per tensor, asymmetric int8 (the `--int8 static` export), range fixed from calibration faces at
  the 0.01 / 99.99 percentiles (onnxruntime's percentile calibrator); the dense head stays float, as in the export.

`prepare` changes the model in place for training; `finalize` puts back the registry's structure (BatchNorm as a pure
shift after the folded conv) with the snapped weights, so the result saves, loads and exports like any ferkit model.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ferkit.errors import FerkitError

PERCENTILE = 99.99  # activation range, as onnxruntime's percentile calibrator in the export


class _FoldedShift(nn.Module):
    """A BatchNorm whose scale is folded into the conv before it: only its shift remains, (B, C, H, W) + (C,)."""

    def __init__(self, shift: torch.Tensor, eps: float) -> None:
        super().__init__()
        self.shift = nn.Parameter(shift)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.shift.view(1, -1, 1, 1).to(x.dtype)


class _PerChannelWeight(nn.Module):
    """Symmetric int8 per output channel with a straight-through gradient: (O, I, kH, kW) -> same, on the grid."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = (w.detach().abs().amax(dim=(1, 2, 3)) / 127).clamp_min(1e-12).float()
        zero = torch.zeros_like(scale, dtype=torch.int32)
        q = torch.fake_quantize_per_channel_affine(w.float(), scale, zero, 0, -127, 127)
        return torch.empty_like(w).copy_(q)  # keeps w's memory format (channels_last) and dtype


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv name, batchnorm name) for each Conv2d registered right before a BatchNorm2d of its width.

    Registration order is dataflow order in nn.Sequential and in the registry's blocks; `prepare` checks the fold
    numerically, so a model where it is not fails loudly instead of quietly changing. (torch.fx cannot trace the
    models' shape-dependent centre crop.)"""
    pairs = []
    for parent_name, parent in model.named_modules():
        children = list(parent.named_children())
        for (a_name, a), (b_name, b) in itertools.pairwise(children):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d) and a.out_channels == b.num_features:
                prefix = f"{parent_name}." if parent_name else ""
                pairs.append((prefix + a_name, prefix + b_name))
    return pairs


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    model.get_submodule(parent)._modules[child] = module


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> _FoldedShift:
    """conv.weight *= gamma / sqrt(var + eps); the returned shift is beta + (bias - mean) * that factor."""
    factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C,)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(factor.view(-1, 1, 1, 1))
    if conv.bias is not None:
        conv.bias.zero_()
    return _FoldedShift((bn.bias + (bias - bn.running_mean) * factor).clone(), bn.eps)


@torch.no_grad()
def activation_ranges(model: nn.Module, inputs: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Each Conv2d's input range over `inputs` (N, 1, H, W) at the 0.01 / 99.99 percentiles, widened to hold 0."""
    seen: dict[str, list[np.ndarray]] = {}
    hooks = [
        m.register_forward_pre_hook(lambda _m, a, n=name: seen.setdefault(n, []).append(a[0].float().numpy().ravel()))
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        model.eval()(inputs)
    finally:
        for h in hooks:
            h.remove()
    ranges = {}
    for name, parts in seen.items():
        lo, hi = np.percentile(np.concatenate(parts), [100 - PERCENTILE, PERCENTILE])
        ranges[name] = (min(float(lo), 0.0), max(float(hi), 0.0))
    return ranges


def _act_hook(lo: float, hi: float):
    """Asymmetric int8 per tensor over [lo, hi] (onnxruntime's scale and zero point), straight-through inside."""
    scale = max(hi - lo, 1e-8) / 255.0
    zero = round(-128 - lo / scale)

    def hook(_module, args):
        x = args[0]
        return (torch.fake_quantize_per_tensor_affine(x.float(), scale, zero, -128, 127).to(x.dtype),)

    return hook


def prepare(model: nn.Module, faces: np.ndarray) -> nn.Module:
    """In place: fold BatchNorms, fake-quantise Conv weights and inputs; `faces` (N, 48, 48) uint8 set the ranges."""
    from ferkit.models.preprocess import to_input

    inputs = to_input(torch.from_numpy(faces)[:, None], model.pretrained_cfg, channels_last=False)  # (N, 1, 48, 48)
    model.eval()
    with torch.no_grad():
        before = model(inputs)  # (N, classes)
    pairs = conv_bn_pairs(model)
    if not pairs:
        raise FerkitError(
            f"{type(model).__name__} has no Conv2d -> BatchNorm2d pair to fold: "
            "QAT supports models whose BatchNorm follows a conv"
        )
    for conv_name, bn_name in pairs:
        _set_module(model, bn_name, _fold(model.get_submodule(conv_name), model.get_submodule(bn_name)))
    with torch.no_grad():
        drift = float((model(inputs) - before).abs().max())
    if drift > 1e-3 * max(1.0, float(before.abs().max())):
        raise FerkitError(f"folding BatchNorm into the convs changed {type(model).__name__}'s outputs by {drift:.3g}")
    ranges = activation_ranges(model, inputs)  # measured on the folded float model, as the export calibrates
    model._qat_hooks = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            parametrize.register_parametrization(m, "weight", _PerChannelWeight())
            model._qat_hooks.append(m.register_forward_pre_hook(_act_hook(*ranges[name])))
    model._qat_ranges = ranges
    return model


def finalize(model: nn.Module) -> nn.Module:
    """In place: weights snapped to their int8 grid, activation simulation removed, BatchNorm2d modules back (as
    pure shifts: weight 1, mean 0, variance 1 - eps) so the state dict is the registry model's."""
    for h in getattr(model, "_qat_hooks", []):
        h.remove()
    model._qat_hooks = []
    for m in [m for m in model.modules() if parametrize.is_parametrized(m, "weight")]:
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    for name, m in list(model.named_modules()):
        if isinstance(m, _FoldedShift):
            bn = nn.BatchNorm2d(m.shift.numel(), eps=m.eps).to(m.shift.device)
            with torch.no_grad():
                bn.bias.copy_(m.shift)
                bn.running_var.fill_(1.0 - m.eps)
            _set_module(model, name, bn)
    return model
