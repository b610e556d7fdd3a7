"""Grad-CAM maps drawn over their images (NumPy and matplotlib only: the report and the leaderboard
draw them without importing torch)."""

from __future__ import annotations

import io

import numpy as np


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """(S, S, 3) uint8: the grey image with the map in the 'jet' colours on top."""
    from matplotlib import colormaps

    grey = np.repeat(image[..., None].astype(np.float32) / 255.0, 3, axis=2)
    heat = colormaps["jet"](cam)[..., :3]
    mixed = (1 - alpha * cam[..., None]) * grey + alpha * cam[..., None] * heat
    return (np.clip(mixed, 0, 1) * 255).round().astype(np.uint8)


def overlay_png(image: np.ndarray, cam: np.ndarray, scale: int = 1) -> bytes:
    """An overlay as PNG bytes (``scale``: nearest-neighbour enlargement of tiny images)."""
    from PIL import Image

    picture = Image.fromarray(overlay(image, cam), "RGB")
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
