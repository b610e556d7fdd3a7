"""Data sources: one file per source behind :class:`~pneumobench.data.sources.base.DataSource`.

A new source (DICOM folders, a CSV manifest, ...) is one module with a ``DataSource`` subclass
plus one line in ``SOURCES`` and one in the config's ``SOURCE_TASKS`` (the tasks it serves;
``tests/test_architecture.py`` checks that both tables name the same sources).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pneumobench.data.sources.base import DataSource

# name in the config -> "module:class" (imported on first use)
SOURCES = {
    "folder": "pneumobench.data.sources.folder:FolderSource",
    "medmnist": "pneumobench.data.sources.medmnist:MedMNISTSource",
}


def get_source(name: str) -> DataSource:
    """The source registered as ``name`` (a key of ``SOURCES``)."""
    module, _, cls = SOURCES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()
