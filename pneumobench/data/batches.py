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
        sizes = [min(batch_size, n - start) for start in range(0, n, batch_size)]
        drawn = self._draw_epoch(sizes, generator) if self.augment is not None else None
        for k, start in enumerate(range(0, n, batch_size)):
            idx = order[start : start + batch_size]
            x = self.images[self.rows[idx]].unsqueeze(1).float().div_(255.0)
            if self.augment is not None and drawn is not None:
                x = apply_affine(x, self.augment, drawn[k])
                if _intensity_on(self.augment):
                    x = apply_intensity(x, self.augment, drawn[k])
            yield x, self.labels[idx]

    def _draw_epoch(
        self, sizes: list[int], generator: torch.Generator | None
    ) -> list[dict[str, torch.Tensor]]:
        """Every batch's augmentation numbers, drawn on the CPU in the order the batches would
        draw them one by one (the same numbers), then moved to the device in one pinned,
        non-blocking copy: the training loop never waits for the host."""
        per_batch = []
        for b in sizes:
            numbers = draw_affine(b, self.augment, generator)
            if _intensity_on(self.augment):
                numbers.update(draw_intensity(b, self.augment, generator))
            per_batch.append(numbers)
        if self.device.type == "cpu" or not per_batch:
            return per_batch
        keys = list(per_batch[0])
        flat = torch.cat([torch.cat([p[key] for key in keys]) for p in per_batch]).pin_memory()
        flat = flat.to(self.device, non_blocking=True)
        out, offset = [], 0
        for b, _ in zip(sizes, per_batch, strict=True):
            batch = {}
            for key in keys:
                batch[key] = flat[offset : offset + b]
                offset += b
            out.append(batch)
        return out


def _intensity_on(cfg: AugmentConfig | None) -> bool:
    return cfg is not None and bool(cfg.brightness or cfg.contrast or cfg.gamma)


def draw_affine(
    b: int, cfg: AugmentConfig, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """The affine warp's numbers of ``b`` images, on the CPU: angle (radians), scale, shifts,
    flip sign (all ones when hflip is off: nothing drawn for it)."""

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, generator=generator).mul_(high - low).add_(low)

    angle = uniform(-cfg.rotation, cfg.rotation) * (math.pi / 180)
    scale = uniform(*cfg.scale)
    tx, ty = uniform(-cfg.translate, cfg.translate) * 2, uniform(-cfg.translate, cfg.translate) * 2
    flip = (
        torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
        if cfg.hflip
        else torch.ones(b)
    )
    return {"angle": angle, "scale": scale, "tx": tx, "ty": ty, "flip": flip}


def apply_affine(x: torch.Tensor, cfg: AugmentConfig, d: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-image rotation, scale, shift (and flip) by the drawn numbers, in one grid_sample."""
    angle, scale, tx, ty, flip = (d[k].to(x.device) for k in ("angle", "scale", "tx", "ty", "flip"))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_affine(
    x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-image random rotation, scale, shift (and optional flip) in one grid_sample call."""
    return apply_affine(x, cfg, draw_affine(x.shape[0], cfg, generator))


def draw_intensity(
    b: int, cfg: AugmentConfig, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """The intensity jitter's numbers of ``b`` images, on the CPU; nothing drawn for an option
    that is off, so switching these on leaves the affine draws (and runs without them) as they
    were."""

    def uniform(limit: float) -> torch.Tensor:
        return torch.rand(b, generator=generator).mul_(2 * limit).sub_(limit)

    out = {}
    if cfg.gamma:
        out["gamma"] = uniform(cfg.gamma)
    if cfg.contrast:
        out["contrast"] = uniform(cfg.contrast)
    if cfg.brightness:
        out["brightness"] = uniform(cfg.brightness)
    return out


def apply_intensity(
    x: torch.Tensor, cfg: AugmentConfig, d: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Gamma curve, contrast around the image's mean, brightness shift (in that order) by the
    drawn numbers, clamped to [0, 1]."""
    b = x.shape[0]

    def values(key: str) -> torch.Tensor:
        return d[key].to(x.device, x.dtype).view(b, 1, 1, 1)

    if cfg.gamma:
        x = x.clamp(min=1e-6).pow(values("gamma").exp())
    if cfg.contrast:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (1 + values("contrast")) + mean
    if cfg.brightness:
        x = x + values("brightness")
    return x.clamp_(0.0, 1.0)


def random_intensity(
    x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-image random gamma curve, contrast and brightness shift, clamped to [0, 1]."""
    return apply_intensity(x, cfg, draw_intensity(x.shape[0], cfg, generator))
