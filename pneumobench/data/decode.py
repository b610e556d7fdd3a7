"""Turning image files into one uint8 array. The only place pixels are read from disk."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from pneumobench.errors import DataError


def decode_image(path: Path, size: int) -> np.ndarray:
    """Grey, square ``size`` px. JPEG draft mode lets libjpeg shrink big originals while decoding."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("L", (size, size))
        grey = img.convert("L")
        if grey.size != (size, size):
            grey = grey.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(grey, dtype=np.uint8)


def decode_many(paths: list[Path], size: int, workers: int | None = None) -> np.ndarray:
    """Decode in threads (PIL releases the GIL); every unreadable file is named in one error."""
    out = np.empty((len(paths), size, size), dtype=np.uint8)
    failures: list[str] = []

    def work(i: int) -> None:
        try:
            out[i] = decode_image(paths[i], size)
        except Exception as exc:  # PIL raises many types for broken files
            failures.append(f"{paths[i]}: {type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(work, range(len(paths))))
    if failures:
        shown = sorted(failures)[:20]
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise DataError(
            f"{len(failures)} image(s) cannot be read (truncated or not an image); remove or "
            "replace them:\n  - " + "\n  - ".join(shown) + more
        )
    return out
