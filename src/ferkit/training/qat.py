"""Quantisation-aware fine-tuning for the full-integer ONNX file (`ferkit export --format onnx-int8 --int8 static`).

Post-training quantisation moves the top expression of the faces whose two best classes are close: 2.9% of
PublicTest for the phone student fast_fer_tr (docs/RESULTS.md), against a 99% agreement bar. Fine-tuning with the
file's rounding simulated in the forward pass lets the network move its decisions away from the rounding, and ends
with weights that lie exactly on the grid ONNX Runtime will use.

What is simulated is what `ferkit.export.onnx.quantize_onnx_qoperator` produces (QLinearConv for every Conv):
- BatchNorm folded into the convolution before it, directly or through a max-pool (FastFer's `conv -> pool -> BN`,
  exact when every BN scale is positive; `ferkit.models.fold` folds the export the same way);
- each Conv weight symmetric per output channel on ORT's 7-bit grid (`reduce_range`): integers -64..64,
  scale = max|w| / 64;
- each Conv input and output per tensor, asymmetric uint8 over the range ORT's percentile calibrator gives (its
  2048-bin histogram of |x| over the calibration faces, the STATIC_PERCENTILE-th percentile, clipped to the
  tensor's min and max, widened to hold 0), on the tensors the file has: the centre crop, the whitening's
  channels zero-padded to ONNX_CHANNEL_BLOCK. A QLinearConv's output is uint8 too, so it is rounded before the
  pool and activation after it; where the export writes a ReLU straight after the conv, that output takes the
  ReLU's range, [0, max] (`_relu_follows`; ORT fuses the two);
- FastFer's first conv as the fold writes it: it reads the gray levels (quantised over their own range) and the
  normalisation's shift sits in its float bias. The dense head stays float, as in the export.

Measured on a fast_fer_tr with whitened smooth faces (tests/training/test_qat.py): the simulated whitening output
is ONNX Runtime's to one quantisation step on 98% of its values and exact on the rest, and the logits sit at 0.58 of
the float model's mean distance from the int8 file's.

`prepare` changes the model in place for training; `finalize` puts back the registry's structure (BatchNorm as a pure
shift after the folded conv) with the snapped weights, so the result saves, loads and exports like any ferkit model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ferkit.errors import FerkitError
from ferkit.export.onnx import STATIC_PERCENTILE

HISTOGRAM_BINS = 2048  # ORT's percentile calibrator's default
WEIGHT_QMAX = 64  # ORT's reduce_range int8 weights: -64..64 (the export's 7-bit weights)


class _PerChannelWeight(nn.Module):
    """Symmetric per output channel on the -64..64 grid with a straight-through gradient: (O, I, kH, kW) -> same."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = (w.detach().abs().amax(dim=(1, 2, 3)) / WEIGHT_QMAX).clamp_min(1e-12).float()
        zero = torch.zeros_like(scale, dtype=torch.int32)
        q = torch.fake_quantize_per_channel_affine(w.float(), scale, zero, 0, -WEIGHT_QMAX, WEIGHT_QMAX)
        return torch.empty_like(w).copy_(q)  # keeps w's memory format (channels_last) and dtype


def _convs_and_what_follows(model: nn.Module):
    """(parent prefix, name, conv, [(name, module) registered after it in the same parent]) for every Conv2d."""
    for parent_name, parent in model.named_modules():
        prefix = f"{parent_name}." if parent_name else ""
        children = list(parent.named_children())
        for i, (name, m) in enumerate(children):
            if isinstance(m, nn.Conv2d):
                yield prefix, name, m, children[i + 1 :]


def fold_pairs(model: nn.Module) -> list[tuple[str, str, bool]]:
    """(conv name, batchnorm name, through a pool) for each Conv2d registered right before a BatchNorm2d of its
    width, or before a MaxPool2d and then one (FastFer's groups).

    Registration order is dataflow order in nn.Sequential and in the registry's blocks; `prepare` checks the fold
    numerically, so a model where it is not fails loudly instead of quietly changing. (torch.fx cannot trace the
    models' shape-dependent centre crop.)"""
    pairs = []
    for prefix, a_name, a, after in _convs_and_what_follows(model):
        rest = after[:2]
        pooled = len(rest) == 2 and isinstance(rest[0][1], nn.MaxPool2d)
        b_name, b = rest[1] if pooled else (rest[0] if rest else (None, None))
        if isinstance(b, nn.BatchNorm2d) and a.out_channels == b.num_features:
            pairs.append((prefix + a_name, prefix + b_name, pooled))
    return pairs


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    model.get_submodule(parent)._modules[child] = module


def _bn_factor(bn: nn.BatchNorm2d) -> torch.Tensor:
    return bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)  # (C,)


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """conv.weight *= gamma / sqrt(var + eps); conv's bias becomes beta + (bias - mean) * that factor, so that
    conv'(x) = bn(conv(x)) (and maxpool(conv'(x)) = bn(maxpool(conv(x))) for a positive factor)."""
    factor = _bn_factor(bn)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(factor.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter((bn.bias + (bias - bn.running_mean) * factor).clone())


def _ort_range(x: np.ndarray, zeros: float = 0.0) -> tuple[float, float]:
    """ORT's percentile calibration of one tensor's values `x` over all calibration faces, then uint8's need to hold
    0. Its histogram is reproduced, not just the percentile (one rounding step of a gray level moves a whitening
    output by a dozen of its steps): 2048 bins over the range of |x|, the threshold the lower edge of the bin where
    the cumulative share passes STATIC_PERCENTILE, clipped to x's min and max. `zeros`: the export's tensor holds
    that many more values per value (the channels the fold pads, `_export_view`), all zero, and they move the
    percentile."""
    if zeros > 0:
        x = np.concatenate([x, np.zeros(round(len(x) * zeros), x.dtype)])
    hist, edges = np.histogram(np.abs(x), bins=HISTOGRAM_BINS)
    cdf = np.cumsum(hist / hist.sum())
    t = float(edges.astype(x.dtype)[np.searchsorted(cdf, STATIC_PERCENTILE / 100.0)])
    lo, hi = max(-t, float(x.min())), min(t, float(x.max()))
    return min(lo, 0.0), max(hi, 0.0)


@torch.no_grad()
def activation_ranges(
    model: nn.Module,
    inputs: torch.Tensor,
    zeros: dict[str, tuple[float, float]] | None = None,
    relu_after: set[str] | frozenset[str] = frozenset(),
) -> dict[str, tuple[tuple[float, float], ...]]:
    """Each Conv2d's (input range, output range) over `inputs` (N, 1, H, W), as the export calibrates them; `zeros`
    maps a conv to the padded zeros (`_ort_range`) of its input and of its output in the export; a conv in
    `relu_after` takes its ReLU's output range, as ORT gives it (`_relu_follows`)."""
    seen: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    zeros = zeros or {}

    def record(name):
        def hook(_m, args, out):
            ins, outs = seen.setdefault(name, ([], []))
            ins.append(args[0].float().numpy().ravel())
            out = out.float().clamp_min(0) if name in relu_after else out.float()
            outs.append(out.numpy().ravel())

        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        model.eval()(inputs)
    finally:
        for h in hooks:
            h.remove()
    ranges = {}
    for name, (ins, outs) in seen.items():
        z_in, z_out = zeros.get(name, (0.0, 0.0))
        ranges[name] = (_ort_range(np.concatenate(ins), z_in), _ort_range(np.concatenate(outs), z_out))
    return ranges


def _uint8(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Asymmetric uint8 per tensor over [lo, hi] (ORT's scale and zero point), straight-through inside."""
    scale = max(hi - lo, 1e-8) / 255.0
    zero = min(255, max(0, round(-lo / scale)))
    return torch.fake_quantize_per_tensor_affine(x.float(), scale, zero, 0, 255).to(x.dtype)


def _input_hook(lo: float, hi: float):
    return lambda _module, args: (_uint8(args[0], lo, hi),)


def _output_hook(lo: float, hi: float):
    return lambda _module, _args, out: _uint8(out, lo, hi)


def _gray_hook(gain: float, shift: float, lo: float, hi: float):
    """The first conv of a folded FastFer reads the gray levels (the fold moves the normalisation into it): the file
    quantises gray = (x - shift) / gain over ORT's range of the gray levels, x being the normalised input."""

    def hook(_module, args):
        gray = (args[0].float() - shift) / gain
        return ((_uint8(gray, lo, hi) * gain + shift).to(args[0].dtype),)

    return hook


def _gray_shift_hook(shift: float):
    """The fold moves the normalisation's shift into the first conv's float bias: shift * sum(w) of the float weights,
    where the simulated conv of the shifted input gets shift * sum(w_q) of the rounded ones. Puts the difference
    back, (B, C, h, w) + (C,) (up to a few quantisation steps of the output, measured on fast_fer_tr)."""

    def hook(module, _args, out):
        w, w_q = module.parametrizations.weight.original, module.weight  # (C, 1, k, k) each
        return out + (shift * (w - w_q).detach().sum(dim=(1, 2, 3))).view(1, -1, 1, 1).to(out.dtype)

    return hook


def _export_view(model: nn.Module) -> tuple[str | None, dict[str, tuple[float, float]]]:
    """What the export changes around the convolutions of `model`: the conv that reads the gray levels (FastFer's
    whitening) and, per conv, the padded zeros of its input and output (the fold pads the whitening's channels to
    a multiple of ONNX_CHANNEL_BLOCK, and ORT calibrates the padded tensors). (None, {}) for other models."""
    from ferkit.export.onnx import ONNX_CHANNEL_BLOCK
    from ferkit.models.fold import foldable, padded_channels

    if not foldable(model):  # the export folds nothing: the graph is the model as trained
        return None, {}
    channels = model.whiten.out_channels
    extra = (padded_channels(channels, ONNX_CHANNEL_BLOCK) - channels) / channels
    first = next(name for name, m in model.features.named_modules() if isinstance(m, nn.Conv2d))
    return "whiten", {"whiten": (0.0, extra), f"features.{first}": (extra, 0.0)}


def _relu_follows(model: nn.Module, gray: str | None) -> set[str]:
    """The convs whose ReLU the export writes straight after them (through a folded BN, and in a FastFer through its
    max-pool: `ferkit.models.fold`, rewrite 4): ORT fuses each into its QLinearConv, whose output range becomes the
    ReLU's, [0, max]. A BatchNorm left unfolded, or any other module, stands between a conv and its ReLU. `gray`
    (from `_export_view`) is set only for a foldable FastFer."""
    names = set()
    for prefix, name, _conv, after in _convs_and_what_follows(model):
        rest = [c for _, c in after if not isinstance(c, (nn.Identity, nn.MaxPool2d))]
        if rest and isinstance(rest[0], nn.ReLU):
            names.add(prefix + name)
    if gray is not None and isinstance(model.features[0], nn.ReLU):
        names.add(gray)  # the whitening, then the first ReLU
    return names


def prepare(model: nn.Module, faces: np.ndarray) -> nn.Module:
    """In place: fold BatchNorms, fake-quantise Conv weights, inputs and outputs; `faces` (N, 48, 48) uint8 set the
    ranges."""
    from ferkit.models.preprocess import crop_to, to_input

    inputs = to_input(torch.from_numpy(faces)[:, None], model.pretrained_cfg, channels_last=False)  # (N, 1, 48, 48)
    inputs = crop_to(inputs, model.pretrained_cfg["input_size"][-1])  # (N, 1, crop, crop): what the file sees
    model.eval()
    with torch.no_grad():
        before = model(inputs)  # (N, classes)
    pairs = fold_pairs(model)
    if not pairs:
        raise FerkitError(
            f"{type(model).__name__} has no Conv2d -> BatchNorm2d pair to fold: "
            "QAT supports models whose BatchNorm follows a conv"
        )
    model._qat_folds = []
    for conv_name, bn_name, pooled in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        if pooled and not bool((_bn_factor(bn) > 0).all()):
            continue  # max-pool does not commute with a negative scale: the export keeps this BatchNorm too
        model._qat_folds.append((conv_name, bn_name, conv.bias is not None, bn.eps))
        _fold(conv, bn)
        _set_module(model, bn_name, nn.Identity())
    with torch.no_grad():
        drift = float((model(inputs) - before).abs().max())
    if drift > 1e-3 * max(1.0, float(before.abs().max())):
        raise FerkitError(f"folding BatchNorm into the convs changed {type(model).__name__}'s outputs by {drift:.3g}")
    gray, zeros = _export_view(model)
    relu_after = _relu_follows(model, gray)
    ranges = activation_ranges(model, inputs, zeros, relu_after)  # on the folded float model, as the export calibrates
    if gray is not None:  # the gray levels' own range, as ORT calibrates the file's input
        from ferkit.models.fold import input_affine

        gain, shift = input_affine(model.pretrained_cfg)
        levels = crop_to(torch.from_numpy(faces)[:, None].float(), inputs.shape[-1]).numpy()  # (N, 1, crop, crop)
        ranges[gray] = (_ort_range(levels.ravel()), ranges[gray][1])
    model._qat_hooks = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            (in_lo, in_hi), (out_lo, out_hi) = ranges[name]
            parametrize.register_parametrization(m, "weight", _PerChannelWeight())
            hook = _gray_hook(gain, shift, in_lo, in_hi) if name == gray else _input_hook(in_lo, in_hi)
            model._qat_hooks.append(m.register_forward_pre_hook(hook))
            if name == gray:  # before the output's rounding: the file adds its bias inside the QLinearConv
                model._qat_hooks.append(m.register_forward_hook(_gray_shift_hook(shift)))
            model._qat_hooks.append(m.register_forward_hook(_output_hook(out_lo, out_hi)))
    model._qat_ranges = ranges
    return model


def finalize(model: nn.Module) -> nn.Module:
    """In place: weights snapped to their grid, the simulation removed, BatchNorm2d modules back (as pure shifts:
    weight 1, mean 0, variance 1 - eps, the folded bias as their bias) so the state dict is the registry model's."""
    for h in getattr(model, "_qat_hooks", []):
        h.remove()
    model._qat_hooks = []
    for m in [m for m in model.modules() if parametrize.is_parametrized(m, "weight")]:
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    for conv_name, bn_name, had_bias, eps in getattr(model, "_qat_folds", []):
        conv = model.get_submodule(conv_name)
        shift = conv.bias.detach().clone()
        bn = nn.BatchNorm2d(shift.numel(), eps=eps).to(shift.device)
        with torch.no_grad():
            bn.bias.copy_(shift)
            bn.running_var.fill_(1.0 - eps)
            if had_bias:
                conv.bias.zero_()
        if not had_bias:
            conv.bias = None
        _set_module(model, bn_name, bn)
    model._qat_folds = []
    return model
