"""Tests of pneumobench/evaluate/weighted.py."""

from __future__ import annotations

import numpy as np
import pytest

from pneumobench.evaluate.metrics import classification_metrics
from pneumobench.evaluate.statistics import (
    bootstrap_distribution,
    cluster_weights,
)


def _fake_predictions(seed: int, n: int = 300, skill: float = 1.5):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.6).astype(int)
    logit = rng.normal(0, 1, n) + skill * (2 * y - 1)
    p = 1 / (1 + np.exp(-logit))
    return y, np.stack([1 - p, p], 1)


def test_weighted_bootstrap_metrics_equal_sklearn_on_the_resampled_images() -> None:
    y, probs = _fake_predictions(4)
    probs = np.round(probs, 1)  # ties: the hard case for AUC and average precision
    w = cluster_weights(y, None, 5, seed=0)
    vec = bootstrap_distribution(y, probs, w)
    for i in range(5):
        idx = np.repeat(np.arange(len(y)), w[i].astype(int))
        ref = classification_metrics(y[idx], probs[idx], ("normal", "pneumonia"))
        for key, values in vec.items():
            assert values[i] == pytest.approx(ref[key]), key
