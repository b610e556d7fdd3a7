"""Data: scan a source, decode once, carve a patient-grouped validation split."""

from pneumobench.data.prepare import PreparedData, Split, prepare_data

__all__ = ["PreparedData", "Split", "prepare_data"]
