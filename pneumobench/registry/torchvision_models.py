"""torchvision models as ``tv:<name>``, loaded through torchvision's own weights API.

That API reads the torch-hub cache (``$TORCH_HOME/hub/checkpoints``) first, so a filled cache works
offline. ``pretrained: IMAGENET1K_V1`` picks a weights enum by name; ``true`` means DEFAULT.
"""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING

from pneumobench.errors import ModelError
from pneumobench.registry.table import (
    Architecture,
    Backbone,
    library_architecture,
    register_prefix,
)
from pneumobench.registry.weights import torch_hub_dir, weights_unavailable

if TYPE_CHECKING:  # torch is imported when a model is built, not when the registry is listed
    from torch import nn


def build_torchvision(
    name: str, pretrained: bool | str, in_chans: int, image_size: int
) -> Backbone:
    """A torchvision model with its last linear layer removed and its first conv adapted."""
    from torchvision import models

    weights = None
    if pretrained:
        enum = models.get_model_weights(name)
        tag = "DEFAULT" if pretrained is True else str(pretrained)
        try:
            weights = enum[tag] if tag != "DEFAULT" else enum.DEFAULT
        except KeyError:
            options = ", ".join(w.name for w in enum)
            raise ModelError(f"tv:{name} has no weights '{tag}'; choose one of {options}") from None
    try:
        module = models.get_model(name, weights=weights)
    except (OSError, RuntimeError) as exc:
        filename = os.path.basename(weights.url) if weights is not None else "?"
        raise weights_unavailable(
            f"tv:{name}",
            f"torchvision {weights}",
            exc,
            f"{os.path.join(torch_hub_dir(), filename)} (set TORCH_HOME to choose the cache folder)",
        ) from None
    num_features = _drop_classifier(module, name)
    if in_chans != 3:
        _adapt_first_conv(module, in_chans, name)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    if weights is not None:
        preset = weights.transforms()
        mean, std = tuple(preset.mean), tuple(preset.std)
    source = (
        f"torchvision:{type(weights).__name__}.{weights.name}" if weights is not None else "none"
    )
    return Backbone(module, num_features=num_features, mean=mean, std=std, pretrained_source=source)


def _drop_classifier(module: nn.Module, name: str) -> int:
    """Replace the last Linear (and a Dropout right before it) with Identity: features out."""
    from torch import nn

    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ModelError(f"tv:{name} has no linear classifier layer that pneumobench can replace")
    last_name, last = linears[-1]
    parent_name, _, child = last_name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    if isinstance(parent, nn.Sequential) and child.isdigit() and int(child) > 0:
        before = f"{parent_name}.{int(child) - 1}" if parent_name else str(int(child) - 1)
        if isinstance(module.get_submodule(before), nn.Dropout):
            module.set_submodule(before, nn.Identity())
    module.set_submodule(last_name, nn.Identity())
    return last.in_features


def _adapt_first_conv(module: nn.Module, in_chans: int, name: str) -> None:
    """Grey input: the first convolution's RGB filters adapted by timm's own
    ``adapt_input_conv`` (summed for ``in_chans=1``), exactly as timm models get them."""
    from timm.models import adapt_input_conv
    from torch import nn

    for conv_name, conv in module.named_modules():
        if isinstance(conv, nn.Conv2d) and conv.in_channels == 3:
            new = nn.Conv2d(
                in_chans,
                conv.out_channels,
                conv.kernel_size,
                conv.stride,
                conv.padding,
                conv.dilation,
                conv.groups,
                conv.bias is not None,
                conv.padding_mode,
            )
            new.weight.data.copy_(adapt_input_conv(in_chans, conv.weight.detach()))
            if conv.bias is not None:
                new.bias.data.copy_(conv.bias.detach())
            module.set_submodule(conv_name, new)
            return
    raise ModelError(f"tv:{name}: found no 3-channel input convolution to adapt to grey images")


def _resolve(name: str) -> Architecture:
    from torchvision import models

    return library_architecture(
        "tv",
        name,
        name in models.list_models(),
        models.list_models,
        partial(build_torchvision, name),
    )


register_prefix("tv", _resolve)
