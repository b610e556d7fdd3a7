"""Turning image files into one uint8 array, in threads; the pixels of one file come from
``pixels.decode_image`` (the same code ``predict`` and the exported pyfunc model use)."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from pneumobench.data.pixels import decode_image
from pneumobench.errors import DataError

__all__ = ["decode_image", "decode_many", "unreadable_error"]


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
