"""Feeding the model: whole uint8 splits as tensors, indexed and augmented a batch at a time.

No per-image PIL work and no DataLoader workers in the hot loop: a split is one tensor (on the GPU
when there is one), a batch is an index into it, and augmentation is one batched affine warp.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from pneumobench.config import AugmentConfig
from pneumobench.data.prepare import Split


class BatchFeeder:
    """Batches of one split. On CPU the split stays a view of the shared decode cache (rows are
    gathered per batch); on a GPU the split is uploaded once and gathered there."""

    def __init__(
        self,
        split: Split,
        device: torch.device,
        augment: AugmentConfig | None = None,
    ) -> None:
        if device.type == "cuda":
            host = torch.from_numpy(np.ascontiguousarray(split.images)).pin_memory()
            self.images = host.to(device, non_blocking=True)
            self.rows = torch.arange(len(split), device=device)
        else:
            self.images = torch.from_numpy(split.source)  # zero-copy view of the cache
            self.rows = torch.from_numpy(np.asarray(split.index, dtype=np.int64))
        self.labels = torch.from_numpy(np.asarray(split.labels, dtype=np.int64)).to(device)
        self.device = device
        self.augment = augment if augment is not None and augment.enabled else None

    def __len__(self) -> int:
        return len(self.labels)

    def batches(
        self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images in [0, 1] as (B, 1, H, W) float, labels) per batch; augmented if set."""
        n = len(self)
        order = (
            torch.randperm(n, generator=generator).to(self.device)
            if shuffle
            else torch.arange(n, device=self.device)
        )
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            x = self.images[self.rows[idx]].unsqueeze(1).float().div_(255.0)
            if self.augment is not None:
                x = random_affine(x, self.augment, generator)
                if self.augment.brightness or self.augment.contrast or self.augment.gamma:
                    x = random_intensity(x, self.augment, generator)
            yield x, self.labels[idx]


def random_affine(
    x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-image random rotation, scale, shift (and optional flip) in one grid_sample call."""
    b = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, generator=generator).mul_(high - low).add_(low).to(x.device)

    angle = uniform(-cfg.rotation, cfg.rotation) * (math.pi / 180)
    scale = uniform(*cfg.scale)
    tx, ty = uniform(-cfg.translate, cfg.translate) * 2, uniform(-cfg.translate, cfg.translate) * 2
    flip = (
        torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0).to(x.device)
        if cfg.hflip
        else torch.ones(b, device=x.device)
    )
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_intensity(
    x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-image random gamma curve, contrast around the image's mean and brightness shift, in
    that order, clamped to [0, 1]. Draws nothing for an option that is off, so switching these
    on leaves the affine draws (and runs without them) as they were."""
    b = x.shape[0]

    def uniform(limit: float) -> torch.Tensor:
        values = torch.rand(b, generator=generator).mul_(2 * limit).sub_(limit)
        return values.to(x.device, x.dtype).view(b, 1, 1, 1)

    if cfg.gamma:
        x = x.clamp(min=1e-6).pow(uniform(cfg.gamma).exp())
    if cfg.contrast:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (1 + uniform(cfg.contrast)) + mean
    if cfg.brightness:
        x = x + uniform(cfg.brightness)
    return x.clamp_(0.0, 1.0)
