"""Exact rewrites of a FastFer for inference: the same function in fewer, cheaper ONNX Runtime kernels.

At batch 1 a student's latency is a few small convolutions plus a fixed cost per graph node, so four rewrites that
change no output (up to float rounding; every export proves parity with the unfolded torch model):

1. The contract's normalisation `(x * scale - mean) / std` is affine and the whitening conv has no padding, so it
   folds into that conv's weight and bias: three elementwise nodes at 48 px go.
2. `BN(maxpool(conv(x)))` equals `maxpool(conv'(x))` with conv' = conv * s + t when every BN scale s is positive
   (max-pool commutes with a positive per-channel affine map): the BatchNorm node after each pool goes.
   A group with a non-positive scale keeps its BatchNorm (the rewrite would not be exact).
3. The whitening's 2*k*k output channels (18 for k = 3) are zero-padded to a multiple of `channel_block`:
   ONNX Runtime's blocked (NCHWc) convolutions need channel counts that are multiples of the CPU's vector block
   (16 floats on AVX-512, 8 on AVX2), and otherwise run the first full-resolution conv, the dearest, on a slower
   generic path between two layout reorders. The padded channels are zero before and after the activation
   (GELU(0) = ReLU(0) = 0) and meet zero weights in the next conv.
4. In a ReLU FastFer, `ReLU(maxpool(conv'(x)))` is written `maxpool(ReLU(conv'(x)))` (ReLU is monotone, so it
   commutes with max-pool): every conv is then followed straight by its ReLU, the pattern ONNX Runtime fuses, in
   float (one FusedConv) and in the full-integer file (the ReLU becomes the QLinearConv's uint8 output range, the
   max-pool runs on uint8: no float pass between two convolutions).

The rewrite is recorded in the file's metadata (`FOLDING_KEY`), and `unfold_graph_weights` inverts it, so that
`ferkit.models.from_onnx` can still rebuild the trainable model from a folded file.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ferkit.models.fast_fer import ConvGroup, FastFer
from ferkit.models.preprocess import crop_to

FOLDING_KEY = "ferkit_folding"  # ONNX metadata: what fold_fast_fer did, read back by unfold_graph_weights


def padded_channels(channels: int, block: int) -> int:
    """The whitening's channel count after rewrite 3: the next multiple of `block`."""
    return -(-channels // block) * block


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, t) with bn(x) = x * s + t per channel (eval mode)."""
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return s, bn.bias - bn.running_mean * s


@torch.no_grad()
def _widened(conv: nn.Conv2d, cin: int, affine: tuple[torch.Tensor, torch.Tensor] | None = None) -> nn.Conv2d:
    """`conv` with its input zero-padded to `cin` channels; with affine (s, t), computing conv(x) * s + t (then
    with a bias), without it the same bias-free conv."""
    out = nn.Conv2d(cin, conv.out_channels, conv.kernel_size[0], padding=conv.padding[0], bias=affine is not None)
    out.weight.zero_()
    if affine is None:
        out.weight[:, : conv.in_channels] = conv.weight
        return out
    s, t = affine
    out.weight[:, : conv.in_channels] = conv.weight * s[:, None, None, None]  # (out, in, k, k)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(t)
    out.bias.copy_(bias * s + t)
    return out


@torch.no_grad()
def _fold_group(group: ConvGroup, cin: int) -> tuple[list[nn.Module], bool]:
    """(modules, whether the post-pool BN folded) for one `conv -> pool -> BN -> act -> conv -> BN -> act`."""
    conv1, pool, bn1, act1, conv2, bn2, act2 = group
    first = _bn_affine(bn1)
    second = _widened(conv2, conv2.in_channels, _bn_affine(bn2))
    if bool((first[0] > 0).all()):
        if isinstance(act1, nn.ReLU):  # rewrite 4: the ReLU straight after its conv, then the pool
            return [_widened(conv1, cin, first), act1, pool, second, act2], True
        return [_widened(conv1, cin, first), pool, act1, second, act2], True
    return [_widened(conv1, cin), pool, bn1, act1, second, act2], False


class FoldedFastFer(nn.Module):
    """Gray levels 0..255 (B, 1, 48, 48) in, logits (B, 7) out: a FastFer with its preprocessing, post-pool BNs
    and head scale folded in (`fold_fast_fer`). Inference only; `description` goes into the exported metadata."""

    def __init__(self, model: FastFer, channel_block: int) -> None:
        super().__init__()
        cfg = model.pretrained_cfg
        self.crop = int(cfg["input_size"][-1])
        gain, shift = input_affine(cfg)  # normalised = gray * gain + shift
        w, b = model.whiten.weight.detach(), model.whiten.bias.detach()  # (C, 1, k, k), (C,)
        channels = w.shape[0]
        padded = padded_channels(channels, channel_block)
        self.whiten = nn.Conv2d(w.shape[1], padded, w.shape[-1], padding=0, bias=True)
        with torch.no_grad():
            self.whiten.weight.zero_()
            self.whiten.bias.zero_()
            self.whiten.weight[:channels] = w * gain
            self.whiten.bias[:channels] = b + shift * w.sum(dim=(1, 2, 3))  # padding 0: every tap sees an input
        layers: list[nn.Module] = [type(model.features[0])()]  # the first activation (GELU or ReLU)
        cin, folded = padded, []
        for group in model.features[1:]:
            modules, ok = _fold_group(group, cin)
            layers += modules
            folded.append(ok)
            cin = group[4].out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(model.head.in_features, model.head.out_features, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(model.head.weight * model.scale)
        self.description = {
            "architecture": "fast_fer",
            "input_affine": [gain, shift],
            "whiten_channels": [channels, padded],
            "post_pool_bn_folded": folded,
            "head_scale": float(model.scale),
        }

    def forward(self, faces: torch.Tensor) -> torch.Tensor:  # (B, 1, 48, 48) 0..255 -> (B, 7)
        x = crop_to(faces, self.crop)  # (B, 1, crop, crop): the centre, the one torch crop (constant slices)
        x = self.features(self.whiten(x))  # (B, C, h, w)
        return self.head(torch.amax(x, dim=(2, 3)))


def input_affine(cfg: dict) -> tuple[float, float]:
    """(gain, shift) of the contract's one-channel normalisation: (x * scale - mean) / std = x * gain + shift."""
    if len(cfg["mean"]) != 1:
        raise ValueError(f"folding expects one input channel, the contract has {len(cfg['mean'])}")
    std = float(cfg["std"][0])
    return float(cfg["scale"]) / std, -float(cfg["mean"][0]) / std


def foldable(model: nn.Module) -> bool:
    """Whether the rewrites apply: a FastFer with an unpadded whitening and plain ConvGroups (a residual
    fast_fer_res exports as trained)."""
    return (
        isinstance(model, FastFer)
        and model.whiten.padding[0] == 0
        and all(isinstance(g, ConvGroup) for g in model.features[1:])
    )


def fold_fast_fer(model: nn.Module, channel_block: int) -> FoldedFastFer | None:
    """The folded inference module of a FastFer (eval mode, float32), its first channels padded to a multiple of
    channel_block (ferkit.export.onnx.ONNX_CHANNEL_BLOCK for ONNX files), or None where it is not `foldable`."""
    if not foldable(model):
        return None
    return FoldedFastFer(model.float().eval(), channel_block).eval()


def unfold_graph_weights(
    convs: list[tuple[np.ndarray, np.ndarray | None]], gemms: list[tuple], folding: dict
) -> tuple[list[tuple[np.ndarray, np.ndarray | None]], list[tuple]]:
    """Graph weights of a folded file (conv (W, b) in graph order, dense (W, b)) back to the FastFer's own:
    the normalisation taken out of the whitening, the padded channels dropped, the head scale divided out.
    A folded post-pool BN needs nothing here: its conv's bias is the BN's shift, which from_onnx gives the
    BN as it does for a conv -> BN pair that torch's exporter folded."""
    if folding.get("architecture") != "fast_fer":
        raise ValueError(f"unknown folding {folding.get('architecture')!r}")
    gain, shift = (float(v) for v in folding["input_affine"])
    channels, _padded = folding["whiten_channels"]
    (w0, b0), (w1, b1), rest = convs[0], convs[1], convs[2:]
    w = w0[:channels].astype(np.float64) / gain  # (C, 1, k, k)
    b = b0[:channels].astype(np.float64) - shift * w.sum(axis=(1, 2, 3))
    first = (w.astype(np.float32), b.astype(np.float32))
    second = (np.ascontiguousarray(w1[:, :channels]), b1)
    scale = float(folding["head_scale"])
    heads = [((np.asarray(hw, dtype=np.float64) / scale).astype(np.float32), hb) for hw, hb in gemms]
    return [first, second, *rest], heads
