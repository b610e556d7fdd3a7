"""Tests of pneumobench/evaluate/operating_points.py."""

from __future__ import annotations

import numpy as np
import pytest

from pneumobench.evaluate.operating_points import threshold_for_recall


def test_threshold_chosen_for_target_recall() -> None:
    y = np.array([1] * 10 + [0] * 10)
    p = np.concatenate([np.linspace(0.1, 0.9, 10), np.linspace(0.0, 0.5, 10)])
    t = threshold_for_recall(y, p, 0.8)
    assert ((p >= t) & (y == 1)).sum() == 8
    assert threshold_for_recall(y, p, 1.0) == pytest.approx(0.1)
