"""Decoded images, kept once per (data content, image size): in memory for this process and as a
memory-mapped ``.npy`` on disk for the next one. Every trial and model of a run shares them.

The mapping is copy-on-write (``mmap_mode="c"``): pages are shared with the page cache and never
written back, and tensors can wrap the array without a copy."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pneumobench.data.pixels import DECODER_VERSION

_MEMORY: dict[str, tuple[np.ndarray, dict]] = {}


def cache_key(fingerprint: str, size: int) -> str:
    """The cache entry of (data content fingerprint, image size)."""
    version = f"v1|decoder{DECODER_VERSION}"  # a changed decoder never reads an old cache
    return hashlib.sha256(f"{version}|{fingerprint}|{size}|L".encode()).hexdigest()[:24]


def cached_array(
    key: str, cache_dir: Path | None, build: Callable[[], tuple[np.ndarray, dict]]
) -> tuple[np.ndarray, dict]:
    """The array for ``key`` (and its JSON side notes, e.g. unreadable files), built at most once
    per machine until the data changes."""
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir / f"images-{key}.npy" if cache_dir else None
    notes_path = path.with_suffix(".json") if path is not None else None
    entry = None
    if path is not None and path.is_file() and notes_path is not None and notes_path.is_file():
        try:  # a damaged cache file is rebuilt, never trusted
            entry = (np.load(path, mmap_mode="c"), json.loads(notes_path.read_text()))
        except (OSError, ValueError):
            entry = None
    if entry is None:
        array, notes = build()
        if path is not None and notes_path is not None:
            try:
                _atomic_write(notes_path, lambda fh: fh.write(json.dumps(notes).encode()))
                _atomic_write(path, lambda fh: np.save(fh, array))  # written last: complete
                array = np.load(path, mmap_mode="c")
            except OSError as exc:  # a read-only folder: this run keeps the array in memory
                notes = {**notes, "cache_unwritable": f"{cache_dir}: {exc.strerror or exc}"}
        entry = (array, notes)
    _MEMORY[key] = entry
    return entry


def _atomic_write(path: Path, write: Callable[[Any], object]) -> None:
    """Temp file + rename: a crash mid-write never leaves a half file that looks whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clear_memory_cache() -> None:
    """Forget the in-memory arrays (tests; the disk cache stays)."""
    _MEMORY.clear()
