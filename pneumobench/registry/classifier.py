"""The one head every candidate gets, and the backbone/head split the protocol freezes by."""

from __future__ import annotations

import torch
from torch import nn

from pneumobench.registry.table import Backbone


class Classifier(nn.Module):
    """Normalize -> backbone features -> dropout -> linear.

    Normalization lives inside the model, so a logged model takes images scaled to [0, 1]
    and nobody has to remember each backbone's ImageNet statistics.
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        num_classes: int,
        dropout: float,
        registry_name: str,
        family: str,
        in_chans: int = 1,
    ) -> None:
        super().__init__()
        self.backbone = backbone.module
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(backbone.num_features, num_classes)
        )
        mean, std = _per_channel(backbone.mean, in_chans), _per_channel(backbone.std, in_chans)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.registry_name = registry_name
        self.family = family
        self.pretrained_source = backbone.pretrained_source

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], (B, C, H, W) -> class logits."""
        features = self.backbone((images - self.mean) / self.std)
        return self.head(features)

    def head_parameters(self) -> list[nn.Parameter]:
        """The new head: trained at ``lr`` from the first epoch."""
        return list(self.head.parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The backbone: frozen at first, then trained at ``lr * backbone_lr_mult`` if pretrained."""
        return list(self.backbone.parameters())

    @property
    def num_params(self) -> int:
        """All parameters, head included."""
        return sum(p.numel() for p in self.parameters())

    @property
    def is_pretrained(self) -> bool:
        """Whether the backbone starts from pretrained weights."""
        return self.pretrained_source != "none"


def _per_channel(values: tuple[float, ...], in_chans: int) -> list[float]:
    """RGB statistics for a grey input: their mean, as timm does when it sums the first conv."""
    if len(values) == in_chans:
        return list(values)
    return [sum(values) / len(values)] * in_chans
