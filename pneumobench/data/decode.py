"""Turning image files into one uint8 array. The only place pixels are read from disk."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from pneumobench.errors import DataError


def decode_image(path: Path | io.BytesIO, size: int, resize: str = "pad") -> np.ndarray:
    """Grey, square ``size`` px. JPEG draft mode lets libjpeg shrink big originals while decoding.

    ``resize``: how a non-square image becomes square. ``squash`` stretches it (the aspect ratio
    is lost: a 1.4:1 chest becomes narrow); ``center_crop`` keeps the central square (the sides
    of the chest may be cut); ``pad`` adds black borders to the short side (all of the image is
    kept, smaller).

    16-bit and 32-bit grey images (PNG, TIFF) are scaled by their bit depth to 8 bit, not clipped
    (Pillow's ``convert("L")`` clips them to white); palette and alpha images keep their grey.
    """
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("L", (size, size))
        grey = _square(to_grey8(img), resize)
        if grey.size != (size, size):
            grey = grey.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(grey, dtype=np.uint8)


def _square(img: Image.Image, resize: str) -> Image.Image:
    width, height = img.size
    if resize == "squash" or width == height:
        return img
    side = min(width, height) if resize == "center_crop" else max(width, height)
    if resize == "center_crop":
        left, top = (width - side) // 2, (height - side) // 2
        return img.crop((left, top, left + side, top + side))
    canvas = Image.new("L", (side, side), 0)
    canvas.paste(img, ((side - width) // 2, (side - height) // 2))
    return canvas


def to_grey8(img: Image.Image) -> Image.Image:
    """An 8-bit grey image of any mode, scaled by the mode's bit depth."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(img, dtype=np.float64)
        if img.mode == "F" and pixels.size and np.nanmax(pixels) <= 1.0:
            full_scale = 1.0  # floating-point images in [0, 1]
        elif img.mode in ("I", "F") and pixels.size and np.nanmax(pixels) > 65535:
            full_scale = 2.0**32 - 1
        else:
            full_scale = 65535.0  # 16-bit grey (Pillow opens 16-bit PNGs as I;16 or I)
        scaled = np.clip(np.nan_to_num(pixels) * (255.0 / full_scale), 0, 255)
        return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")
    return img.convert("L")


def decode_many(
    paths: list[Path], size: int, workers: int | None = None, resize: str = "pad"
) -> tuple[np.ndarray, dict]:
    """Decode in threads (PIL releases the GIL), reading each file once.

    Returns the images and notes: ``bad`` lists (index, reason) of unreadable files (left black;
    the caller decides whether that is an error or a skip) and ``sha1`` each file's content
    digest, to find byte-identical duplicates.
    """
    out = np.zeros((len(paths), size, size), dtype=np.uint8)
    digests = [""] * len(paths)
    failures: list[tuple[int, str]] = []

    def work(i: int) -> None:
        try:
            payload = paths[i].read_bytes()
            if not payload:
                failures.append((i, "empty file (0 bytes)"))
                return
            digests[i] = hashlib.sha1(payload).hexdigest()
            out[i] = decode_image(io.BytesIO(payload), size, resize)
        except FileNotFoundError:
            failures.append((i, "missing: a broken symbolic link, or deleted during the scan"))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                failures.append((i, "a symbolic link that loops"))
            else:
                failures.append((i, f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # PIL raises many types for broken files
            failures.append((i, f"{type(exc).__name__}: {exc}"))

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(work, range(len(paths))))
    return out, {"bad": sorted(failures), "sha1": digests}


def unreadable_error(failures: list[str]) -> DataError:
    """One DataError naming the unreadable files (the first 20) and the ways out."""
    shown = failures[:20]
    more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
    return DataError(
        f"{len(failures)} image(s) cannot be read (truncated or not an image). Remove or replace "
        "them, or set data.on_bad_image: skip to leave them out (they are then listed in MLflow):"
        "\n  - " + "\n  - ".join(shown) + more
    )
