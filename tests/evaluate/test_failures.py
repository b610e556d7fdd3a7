"""Tests of pneumobench/evaluate/failures.py."""

from __future__ import annotations

import numpy as np

from pneumobench.evaluate.failures import confident_errors, deployed_confusion


def test_confusion_at_the_deployed_threshold_not_argmax() -> None:
    y = np.array([0, 0, 1, 1])
    score = np.array([0.2, 0.35, 0.3, 0.9])
    probs = np.column_stack([1 - score, score])
    assert deployed_confusion(y, probs, 0.25).tolist() == [[1, 1], [0, 2]]
    assert deployed_confusion(y, probs, 0.5).tolist() == [[2, 0], [1, 1]]  # = argmax
    three = np.array([[0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    assert deployed_confusion(np.array([1, 2]), three, 0.25).tolist() == [
        [0, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
    ]


def test_the_most_confident_errors_come_first() -> None:
    y = np.array([1, 1, 1, 0, 0, 0])
    score = np.array([0.05, 0.3, 0.9, 0.95, 0.6, 0.1])
    probs = np.column_stack([1 - score, score])
    assert confident_errors(y, probs, 0.5, 2) == [
        ("false negative", 0),
        ("false negative", 1),
        ("false positive", 3),
        ("false positive", 4),
    ]
    assert confident_errors(y, probs, 0.5, 0) == []
