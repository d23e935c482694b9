"""Architectures for accuracy on FER2013 (issue 6): a VGG-style trunk, a CIFAR-style ResNet-18, a small phone net.

All take a random crop of the 48 px face in training (input_size below) and its centre at test time; exports
take the full 48 px face and crop inside the graph.
"""

from __future__ import annotations

import torch
from torch import nn

from ferkit.labels import CLASS_NAMES
from ferkit.models.registry import register_model


def fer_cfg(crop: int) -> dict:
    # FER2013's pixel statistics (mean 129.4, std 65.0 of 255), measured on the data set.
    return {"input_size": (1, crop, crop), "mean": (0.507,), "std": (0.255,), "scale": 1 / 255, "labels": CLASS_NAMES}


def conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class VGGFer(nn.Module):
    """4 stages (64-128-256-512) of two conv3x3+BN+ReLU and a max-pool; global average pool; slim head."""

    def __init__(self, widths=(64, 128, 256, 512), num_classes: int = 7, dropout: float = 0.3, crop: int = 44):
        super().__init__()
        layers, cin = [], 1
        for w in widths:
            layers += [conv_bn(cin, w), conv_bn(w, w), nn.MaxPool2d(2)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes)
        )
        self.pretrained_cfg = fer_cfg(crop)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, crop, crop) -> (B, 7)
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(cin, cout, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class ResNetFer(nn.Module):
    """CIFAR-style ResNet-18: a 3x3 stem, no stem pooling, stages of 2 basic blocks (64-128-256-512)."""

    def __init__(self, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), num_classes: int = 7, crop: int = 44):
        super().__init__()
        layers, cin = [conv_bn(1, widths[0])], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if i > 0 and j == 0 else 1))
                cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))
        self.pretrained_cfg = fer_cfg(crop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, crop, crop) -> (B, 7)
        return self.head(self.features(x))


class MobileFer(nn.Module):
    """A phone-sized net (< 1M parameters): depthwise-separable stages, for distillation from a larger teacher."""

    def __init__(self, widths=(64, 128, 256, 512), num_classes: int = 7, crop: int = 44):
        super().__init__()
        layers, cin = [conv_bn(1, widths[0])], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [
                conv_bn(cin, cin, stride, groups=cin),
                nn.Conv2d(cin, w, 1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                conv_bn(w, w, 1, groups=w),
                nn.Conv2d(w, w, 1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
            ]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(cin, num_classes))
        self.pretrained_cfg = fer_cfg(crop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, crop, crop) -> (B, 7)
        return self.head(self.features(x))


@register_model
def vgg_fer(**kwargs) -> VGGFer:
    return VGGFer(**kwargs)


@register_model
def resnet18_fer(**kwargs) -> ResNetFer:
    return ResNetFer(**kwargs)


@register_model
def mobile_fer(**kwargs) -> MobileFer:
    return MobileFer(**kwargs)
