"""Small networks trained from scratch: the baselines every chest X-ray notebook starts with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pneumobench.registry.table import Backbone, register_model

if TYPE_CHECKING:  # torch is imported when a model is built, not when the registry is listed
    from torch import nn


def _conv(cin: int, cout: int) -> list[nn.Module]:
    from torch import nn

    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


@register_model(
    family="custom-cnn", description="2 conv + 3 fully connected layers (the last is the head)"
)
def simple_cnn(pretrained: bool | str, in_chans: int, image_size: int) -> Backbone:
    """The notebook baseline: two conv blocks, then two hidden fully connected layers."""
    from torch import nn

    module = nn.Sequential(
        *_conv(in_chans, 32),
        nn.MaxPool2d(2),
        *_conv(32, 64),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(64 * 16, 256),
        nn.ReLU(inplace=True),
        nn.Linear(256, 128),
        nn.ReLU(inplace=True),
    )
    return Backbone(module, num_features=128)


@register_model(
    family="custom-cnn",
    description="CIFAR-10 style: conv 32-64 / 128-128 / 256-256 with max-pooling, fc 1024-512",
)
def cifar_cnn(pretrained: bool | str, in_chans: int, image_size: int) -> Backbone:
    """A deeper VGG-style CNN from the CIFAR-10 tutorials, size-agnostic by adaptive pooling."""
    from torch import nn

    module = nn.Sequential(
        *_conv(in_chans, 32),
        *_conv(32, 64),
        nn.MaxPool2d(2),
        *_conv(64, 128),
        *_conv(128, 128),
        nn.MaxPool2d(2),
        *_conv(128, 256),
        *_conv(256, 256),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(4),  # size-agnostic: 4x4 at 32 px input, pooled down above that
        nn.Flatten(),
        nn.Linear(256 * 16, 1024),
        nn.ReLU(inplace=True),
        nn.Linear(1024, 512),
        nn.ReLU(inplace=True),
    )
    return Backbone(module, num_features=512)
