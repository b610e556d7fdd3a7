"""Decoded images, kept once per (data content, image size): in memory for this process and as a
memory-mapped ``.npy`` on disk for the next one. Every trial and model of a run shares them."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

_MEMORY: dict[str, np.ndarray] = {}


def cache_key(fingerprint: str, size: int) -> str:
    return hashlib.sha256(f"v1|{fingerprint}|{size}|L".encode()).hexdigest()[:24]


def cached_array(key: str, cache_dir: Path | None, build: Callable[[], np.ndarray]) -> np.ndarray:
    """Return the array for ``key``, building it at most once per machine (until data changes)."""
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir / f"images-{key}.npy" if cache_dir else None
    array = None
    if path is not None and path.is_file():
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError):  # a damaged cache file is rebuilt, never trusted
            array = None
    if array is None:
        array = build()
        if path is not None:
            _atomic_save(path, array)
            array = np.load(path, mmap_mode="r")
    _MEMORY[key] = array
    return array


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clear_memory_cache() -> None:
    _MEMORY.clear()
