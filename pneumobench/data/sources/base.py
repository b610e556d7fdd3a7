"""The interface every data source implements, and the one shape they all return."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from pneumobench.config.fields import SOURCE_TASKS
from pneumobench.data.records import ImageRecord


@dataclass(frozen=True)
class SourceRequest:
    """What a source is asked for: the config's ``data`` section, resolved."""

    root: Path  # data.path resolved (folder, or file)
    image_size: int
    task: str  # binary | multiclass
    seed: int
    limit_per_class: int | None
    cache_dir: Path | None
    on_bad_image: str  # error | skip
    resize: str = "pad"  # squash | center_crop | pad (see decode.decode_image)
    download: str = "never"  # auto: a source may fetch missing published files (data.download)
    medmnist_size: int | None = None  # MedMNIST+ file size (28, 64, 128, 224), medmnist only


@dataclass
class SourceImages:
    """A source's answer: one record per image and its decoded pixels, row for row."""

    records: list[ImageRecord]  # split as on disk (train / val / test), label, patient id
    images: np.ndarray  # (len(records), size, size) uint8 grey
    excluded: set[int] = field(default_factory=set)  # rows left out (unreadable, skipped)
    skipped: list[str] = field(default_factory=list)  # "key: reason" of each excluded row
    notes: list[str] = field(default_factory=list)  # said to the user and logged
    content_digests: list[str] = field(default_factory=list)  # per row, to find exact duplicates
    validation_caveat: str = ""  # what a user must know about the source's own val split


def cache_note(decode_notes: dict) -> list[str]:
    """What the user must know about the decode cache (a folder it could not write to)."""
    problem = decode_notes.get("cache_unwritable")
    if not problem:
        return []
    return [
        f"decode cache not written ({problem}): images are decoded again by every run; "
        "set data.cache_dir to a writable folder to keep them"
    ]


class DataSource(ABC):
    """Where images come from. Subclasses set the class attributes and implement ``load``."""

    name: ClassVar[str]
    # True: patient ids are known, so validation is carved from train by patient (unless the
    # official val split is kept); False: the source's own val split is used as it is.
    carves_validation: ClassVar[bool] = True
    # True: records carry real patient ids (splits are checked for shared patients, bootstraps
    # resample patients); False: each image stands for itself and patient counts are unknown.
    has_patient_ids: ClassVar[bool] = True
    # True: every image is square already, so data.resize changes nothing (and not the digest).
    square_images: ClassVar[bool] = False

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this source serves (the config's table ``SOURCE_TASKS`` says, and checks)."""
        return SOURCE_TASKS[self.name]

    @abstractmethod
    def load(self, request: SourceRequest) -> SourceImages:
        """Records and decoded images; raise ``DataError`` naming the file for bad data."""


def limit_per_class(records: list[ImageRecord], limit: int | None, seed: int) -> list[int]:
    """Rows to keep: at most ``limit`` images per (split, label), drawn with the seed (smoke runs)."""
    if not limit:
        return list(range(len(records)))
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    groups: dict[tuple[str, int], list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault((r.split, r.label), []).append(i)
    for members in groups.values():
        chosen = rng.choice(len(members), size=min(limit, len(members)), replace=False)
        keep.extend(members[j] for j in chosen)
    keep.sort()
    return keep
