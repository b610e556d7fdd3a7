"""Where a model looks: Grad-CAM maps (captum's ``LayerGradCam``) on a fixed panel of test images.

- The **panel** is a seeded sample of test images, stratified by class, drawn from the test split
  alone: every model of an experiment gets the same images (same data, same seed).
- The **layer** is the backbone's last layer with a spatial output: a ``(B, C, h, w)`` feature
  map for CNNs; for vision transformers the last ``(B, 1 + h*w, C)`` token sequence, reshaped to
  ``(B, C, h, w)`` after dropping the class token (the "reshape for ViT token maps").
- The **map** explains the class the model decides at its validation-chosen operating point, is
  ReLU'd (evidence for the class), upsampled bilinearly to the input's size and scaled to [0, 1]
  per image. Deterministic for a fixed model: eval mode, no sampling.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

PANEL_PER_CLASS = 16


def panel_indices(labels: np.ndarray, seed: int, per_class: int = PANEL_PER_CLASS) -> np.ndarray:
    """Rows of the test split in the panel: ``per_class`` of each class, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        chosen.extend(rng.choice(rows, size=min(per_class, len(rows)), replace=False).tolist())
    return np.array(sorted(chosen), dtype=np.int64)


class NotExplainable(ValueError):
    """A model Grad-CAM cannot explain: no layer of its backbone keeps a spatial map."""


def target_layer(model: nn.Module, image_size: int, in_chans: int = 1) -> tuple[nn.Module, str]:
    """The backbone's last module with a spatial output, and its kind ("map" or "tokens")."""
    backbone = getattr(model, "backbone", model)
    seen: list[tuple[nn.Module, str, str]] = []

    def hook_for(name: str):
        def hook(module: nn.Module, _inputs: object, output: object) -> None:
            if not isinstance(output, torch.Tensor):
                return
            if output.ndim == 4 and output.shape[-1] > 1 and output.shape[-2] > 1:
                seen.append((module, "map", name))
            elif output.ndim == 3 and _grid_side(output.shape[1]) is not None:
                seen.append((module, "tokens", name))

        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in backbone.named_modules() if n]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_chans, image_size, image_size))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not seen:
        raise NotExplainable(
            "no layer of its backbone has a spatial output (Grad-CAM needs a feature map)"
        )
    module, kind, _ = seen[-1]
    if kind == "tokens":  # after the last block only the class token reaches the head: take the
        # last block's input norm, where every patch token still feeds the class token
        norms = [(m, k) for m, k, n in seen if k == "tokens" and n.endswith("norm1")]
        module, kind = norms[-1] if norms else (module, kind)
    return module, kind


def _grid_side(tokens: int) -> int | None:
    """h for a sequence of h*h patch tokens (or 1 + h*h with a class token)."""
    for n in (tokens - 1, tokens):
        side = math.isqrt(n)
        if n > 1 and side * side == n:
            return side
    return None


class _Tokens:
    """Keeps a layer's token output (and, after backward, its gradient)."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None

    def capture(self, _module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        self.output = output


def _as_grid(tokens: torch.Tensor) -> torch.Tensor:
    """(B, [1 +] h*w, C) tokens -> (B, C, h, w), the class token dropped."""
    side = _grid_side(tokens.shape[1])
    assert side is not None
    patches = tokens[:, -side * side :, :]
    return patches.transpose(1, 2).reshape(tokens.shape[0], -1, side, side)


def grad_cam(
    model: nn.Module, images: np.ndarray, targets: np.ndarray, batch_size: int = 32
) -> np.ndarray:
    """(N, S, S) maps in [0, 1] for (N, S, S) uint8 images, explaining class ``targets[i]``."""
    from captum.attr import LayerAttribution, LayerGradCam

    model = model.cpu().eval()
    size = images.shape[-1]
    layer, kind = target_layer(model, size, 1)
    out = np.zeros(images.shape, dtype=np.float32)
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start : start + batch_size].astype(np.float32)[:, None] / 255)
        target = torch.as_tensor(targets[start : start + batch_size], dtype=torch.long)
        if kind == "map":
            cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
        else:
            cam = _token_cam(model, layer, x, target)
        cam = LayerAttribution.interpolate(cam.detach(), (size, size), interpolate_mode="bilinear")
        cam = cam[:, 0].clamp(min=0).numpy()
        peak = cam.reshape(len(cam), -1).max(1).reshape(-1, 1, 1)
        out[start : start + len(cam)] = np.where(peak > 0, cam / np.maximum(peak, 1e-12), 0)
    return out


def _token_cam(
    model: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Grad-CAM on a transformer's token map: channel weights = mean gradient over patches."""
    kept = _Tokens()
    handle = layer.register_forward_hook(kept.capture)
    try:
        logits = model(x.clone().requires_grad_(True))
        logits.gather(1, target[:, None]).sum().backward()
    finally:
        handle.remove()
    assert kept.output is not None and kept.output.grad is not None
    maps, grads = _as_grid(kept.output.detach()), _as_grid(kept.output.grad)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    return torch.relu((weights * maps).sum(1, keepdim=True))
