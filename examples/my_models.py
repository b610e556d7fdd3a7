"""An example plugin file: two models of your own in the race.

Use it from a config (the path is relative to the config's folder):

    plugins: [my_models.py]
    models:
      - my_cnn
      - {name: my_resnet18_gn, pretrained: false}

The builder contract: ``builder(pretrained, in_chans, image_size) -> Backbone``.

- ``pretrained``: False, True (your entry's default weights) or a weights tag from the config;
  register with ``pretrained=True`` only if the builder can load weights.
- ``in_chans``: 1 (grey chest X-rays); ``image_size``: the square side in px (``data.image_size``).
- Return ``Backbone(module, num_features=..., mean=..., std=..., pretrained_source=...)``:
  ``module`` maps images ``(B, in_chans, S, S)`` to features ``(B, num_features)``. Everything in
  ``module`` is the backbone (frozen for ``protocol.freeze_epochs`` and trained at
  ``lr * backbone_lr_mult`` when pretrained); pneumobench adds the head (dropout + linear) and the
  normalization ``(x - mean) / std`` of images scaled to [0, 1].
"""

from __future__ import annotations

from torch import nn

from pneumobench.registry import Backbone, register_model


@register_model(family="my-cnn", description="three conv blocks, global average pooling")
def my_cnn(pretrained: bool | str, in_chans: int, image_size: int) -> Backbone:
    """A small VGG-style network trained from scratch."""
    layers: list[nn.Module] = []
    channels = in_chans
    for width in (16, 32, 64):
        layers += [
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels = width
    module = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Backbone(module, num_features=64)


@register_model(family="resnet", description="timm resnet18 with GroupNorm (small batches)")
def my_resnet18_gn(pretrained: bool | str, in_chans: int, image_size: int) -> Backbone:
    """A library model with a tweak: timm's ResNet-18 with GroupNorm instead of BatchNorm."""
    from functools import partial

    import timm

    module = timm.create_model(
        "resnet18",
        pretrained=False,
        in_chans=in_chans,
        num_classes=0,  # no classifier: features out
        norm_layer=partial(nn.GroupNorm, 8),
    )
    return Backbone(module, num_features=module.num_features)
