"""Data: a source's records and pixels, decoded once, split by patient, fed as batches.

``prepare_data`` (in ``prepare``) is the door; ``sources/`` holds one module per data source.
The names below are imported on first use, so that ``pneumobench data check`` and the
sources' tables load without numpy-heavy ``prepare``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pneumobench.data.prepare import PreparedData, Split, prepare_data

__all__ = ["PreparedData", "Split", "prepare_data"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pneumobench.data import prepare

        return getattr(prepare, name)
    raise AttributeError(f"module 'pneumobench.data' has no attribute {name!r}")
