"""A fast-training network in the style of the CIFAR-10 speedruns (Keller Jordan's airbench, David Page's ResNet).

A frozen 3x3 patch-whitening convolution, then groups `conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU`:
the first convolution of each group runs at the group's input resolution, everything after it at half, so the
normalisation and activation passes are cheap. A global max-pool and a bias-free linear head scaled down by a
constant (the speedruns' `Mul(1/9)`), which keeps the initial logits small without a learned temperature.
"""

from __future__ import annotations

import torch
from torch import nn

from ferkit.models.fer_nets import fer_cfg
from ferkit.models.registry import register_model

# GELU trains best in float (the speedruns' choice); ReLU is for int8 files: in a quantised graph a GELU is decomposed
# into float Erf/Mul/Add/Div nodes between (de)quantisations that cost as much as the convolutions themselves
# (fast_fer_t: 1.1 of 2.5 ms, docs/RESULTS.md), a ReLU is one cheap node.
ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class ConvGroup(nn.Sequential):
    def __init__(self, cin: int, cout: int, act: str = "gelu") -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(cout),
            activation(act),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            activation(act),
        )


class ResGroup(nn.Module):
    """airbench96's deeper group: `conv3x3 -> maxpool2 -> BN -> act` as in ConvGroup, then two more convolutions at
    the pooled resolution around a residual, `act(x0 + BN(conv(act(BN(conv(x0))))))`. Depth per FLOP: the extra
    convolutions run at half the group's input resolution, and the skip keeps the deeper stack as easy to train."""

    def __init__(self, cin: int, cout: int, act: str = "gelu") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout)
        self.conv3 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm3 = nn.BatchNorm2d(cout)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, h, w) -> (B, cout, h // 2, w // 2)
        x0 = self.act(self.norm1(self.pool(self.conv1(x))))
        x = self.act(self.norm2(self.conv2(x0)))
        return self.act(x0 + self.norm3(self.conv3(x)))


GROUPS: dict[str, type[nn.Module]] = {"plain": ConvGroup, "res": ResGroup}


class FastFer(nn.Module):
    """whiten (1 -> 2*k*k, no padding) -> act -> groups -> global max-pool -> linear * scale (act: GELU or
    ReLU, `ACTIVATIONS`; group: "plain" ConvGroup, two convs, or "res" ResGroup, three with a skip)."""

    def __init__(
        self,
        widths: tuple[int, ...] = (64, 256, 512),
        num_classes: int = 7,
        crop: int = 40,
        whiten_kernel: int = 3,
        scale: float = 1 / 9,
        act: str = "gelu",
        group: str = "plain",
    ) -> None:
        super().__init__()
        if group not in GROUPS:
            raise ValueError(f"unknown group {group!r}; expected one of {', '.join(GROUPS)}")
        wk = 2 * whiten_kernel * whiten_kernel
        self.whiten = nn.Conv2d(1, wk, whiten_kernel, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from the data by init_whitening, never trained
        layers, cin = [], wk
        for w in widths:
            layers.append(GROUPS[group](cin, w, act))
            cin = w
        self.features = nn.Sequential(activation(act), *layers)
        self.head = nn.Linear(cin, num_classes, bias=False)
        self.scale = scale
        self.pretrained_cfg = fer_cfg(crop)

    @torch.no_grad()
    def init_whitening(self, x: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the frozen first layer from normalised training crops x (N, 1, H, W): the eigenvectors of the
        k x k patch covariance scaled by 1/sqrt(eigenvalue), and their negatives (the activation keeps both signs)."""
        k = self.whiten.kernel_size[0]
        patches = x.float().unfold(2, k, 1).unfold(3, k, 1)  # (N, 1, H-k+1, W-k+1, k, k)
        patches = patches.reshape(-1, k * k)  # (M, k*k)
        patches = patches - patches.mean(0)
        cov = patches.T @ patches / len(patches)  # (k*k, k*k)
        eigval, eigvec = torch.linalg.eigh(cov)
        filters = (eigvec.T / torch.sqrt(eigval + eps)[:, None]).reshape(-1, 1, k, k)  # (k*k, 1, k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, crop, crop) -> (B, 7)
        x = self.features(self.whiten(x))  # (B, C, h, w)
        x = torch.amax(x, dim=(2, 3))  # (B, C): global max-pool
        return self.head(x) * self.scale


@register_model
def fast_fer(**kwargs) -> FastFer:
    """The speedrun trunk sized as the feasibility probe: 64/256/512 channels, 40 px crops (~263 MMAC)."""
    return FastFer(**kwargs)


@register_model
def fast_fer_s(**kwargs) -> FastFer:
    """A narrower variant for slower CPUs: 48/192/384 channels (~0.56x the MACs)."""
    return FastFer(**{"widths": (48, 192, 384), **kwargs})


@register_model
def fast_fer_t(**kwargs) -> FastFer:
    """The phone student (issue 18, part 4): 32/96/192 channels, 0.63M parameters (~46 MMAC, ~0.3x fast_fer_s)."""
    return FastFer(**{"widths": (32, 96, 192), **kwargs})


@register_model
def fast_fer_u(**kwargs) -> FastFer:
    """A smaller phone student for the 0.30 ms target (issue 18, part 4): 16/64/128 channels, 0.27M parameters
    (~19 MMAC, ~0.4x fast_fer_t); most of the MACs sit in the first group at full resolution."""
    return FastFer(**{"widths": (16, 64, 128), **kwargs})


@register_model
def fast_fer_tr(**kwargs) -> FastFer:
    """fast_fer_t with ReLU for int8 ONNX files (`ACTIVATIONS`): the candidate 0.30 ms phone student (issue 18,
    part 4)."""
    return FastFer(**{"widths": (32, 96, 192), "act": "relu", **kwargs})


@register_model
def fast_fer_ur(**kwargs) -> FastFer:
    """fast_fer_u with ReLU (int8 ONNX files, as fast_fer_tr)."""
    return FastFer(**{"widths": (16, 64, 128), "act": "relu", **kwargs})


@register_model
def fast_fer_res(**kwargs) -> FastFer:
    """airbench96's depth at fast_fer's cost (issue 18, part 1): three convolutions and a skip per group (ResGroup),
    64/192/384 channels, 10 convolutions against fast_fer's 7, ~0.9x its MACs at 44 px."""
    return FastFer(**{"widths": (64, 192, 384), "group": "res", **kwargs})
