"""The index of a data set before any pixel is read: one record per image."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageRecord:
    """One image: where it is, which split it is in on disk, its label and patient."""

    key: str  # path relative to the data root (folder) or "split/index" (medmnist)
    split: str  # train | val | test, as found on disk (before the validation carve)
    label: int
    patient: str


def records_digest(records: list[ImageRecord], extra: str = "") -> str:
    """A stable identity of the data: which images, where, with which label (and ``extra``)."""
    h = hashlib.sha256(extra.encode())
    for r in sorted(records, key=lambda r: r.key):
        h.update(f"{r.key}\0{r.split}\0{r.label}\n".encode())
    return h.hexdigest()[:16]
