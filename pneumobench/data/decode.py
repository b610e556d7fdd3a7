"""Turning image files into one uint8 array. The only place pixels are read from disk."""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from pneumobench.errors import DataError


def decode_image(path: Path | io.BytesIO, size: int) -> np.ndarray:
    """Grey, square ``size`` px. JPEG draft mode lets libjpeg shrink big originals while decoding."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("L", (size, size))
        grey = img.convert("L")
        if grey.size != (size, size):
            grey = grey.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(grey, dtype=np.uint8)


def decode_many(
    paths: list[Path], size: int, workers: int | None = None
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
            digests[i] = hashlib.sha1(payload).hexdigest()
            out[i] = decode_image(io.BytesIO(payload), size)
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
