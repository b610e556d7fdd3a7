"""Models that join pneumobench's registry when this package is installed (entry point
``pneumobench.models``): importing the module runs the ``@register_model`` decorators."""

from __future__ import annotations

from torch import nn

from pneumobench.registry import Backbone, register_model


@register_model(family="tiny", description="one conv layer and global pooling")
def tiny_convnet(pretrained: bool | str, in_chans: int, image_size: int) -> Backbone:
    """The smallest useful network: a baseline any model should beat."""
    module = nn.Sequential(
        nn.Conv2d(in_chans, 8, 5, stride=2, padding=2),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return Backbone(module, num_features=8)
