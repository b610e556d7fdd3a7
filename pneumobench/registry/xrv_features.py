"""torchxrayvision's DenseNet trunk as a feature extractor (imported when such a model is
built: listing the registry never imports torch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DenseNetFeatures(nn.Module):
    """torchxrayvision's DenseNet trunk: features -> ReLU -> global average pool."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.features(x))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)
