"""The seed notebook's Keras VGG-style network, layer for layer, with Keras's defaults."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from ferkit.labels import CLASS_NAMES
from ferkit.models.registry import register_model

# The data contract every model carries: what its input means and what its outputs are.
SEED_CFG = {"input_size": (1, 48, 48), "mean": (0.0,), "std": (1.0,), "scale": 1 / 255, "labels": CLASS_NAMES}


def keras_bn(channels: int) -> nn.BatchNorm2d:
    # Keras BatchNormalization: momentum 0.99 (torch counts 1 - 0.99), epsilon 1e-3.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def keras_block(cin: int, cout: int, first_padding: int, dropout: float) -> nn.Sequential:
    """Conv(relu) -> BN -> Conv(relu) -> BN -> MaxPool 3x3/2 (valid) -> Dropout: Keras puts ReLU inside Conv2D."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=first_padding),
        nn.ReLU(inplace=True),
        keras_bn(cout),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.ReLU(inplace=True),
        keras_bn(cout),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(dropout),
    )


class SeedVGG(nn.Module):
    """48 -> 46 (valid conv) -> 22 -> 10 -> 4 -> 1 spatially; 5,098,951 trainable parameters."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        widths=(64, 128, 256, 512),
        dropout: float = 0.3,
        head=(512, 256, 64),
    ):
        super().__init__()
        blocks, cin = [], in_chans
        for i, w in enumerate(widths):
            blocks.append(keras_block(cin, w, first_padding=0 if i == 0 else 1, dropout=dropout))
            cin = w
        self.features = nn.Sequential(*blocks)
        dims = (cin, *head)
        head: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(dims):
            head += [nn.Linear(a, b), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        head.append(nn.Linear(dims[-1], num_classes))
        self.head = nn.Sequential(*head)
        self.pretrained_cfg = dict(SEED_CFG)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Keras defaults: Glorot-uniform kernels, zero biases.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 48, 48) -> (B, 7) logits
        return self.head(self.features(x))


@register_model
def seed_vgg(**kwargs) -> SeedVGG:
    return SeedVGG(**kwargs)


@register_model
def seed_vgg_tiny(**kwargs) -> SeedVGG:
    """The seed architecture at 1/8 width, for fast tests of training and every export."""
    return SeedVGG(**{"widths": (8, 16, 32, 64), "head": (64, 32, 16), **kwargs})
