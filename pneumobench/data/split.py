"""Carving a validation set from train that never shares a patient with it."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from pneumobench.errors import DataError


def carve_validation(
    labels: np.ndarray, patients: list[str], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): stratified by label, grouped by patient, ``fraction`` of the images.

    scikit-learn's StratifiedGroupKFold with ``1 / fraction`` folds; the first fold is validation.
    """
    n_splits = max(2, round(1 / fraction))
    groups = np.asarray(patients)
    if len(set(patients)) < n_splits:
        raise DataError(
            f"only {len(set(patients))} patients in train: too few to carve a validation set of "
            f"{fraction:.0%} by patient. Use more data or a larger data.val_fraction."
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train_idx, val_idx = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return np.sort(train_idx), np.sort(val_idx)
