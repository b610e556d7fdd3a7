"""Tests of pneumobench/report/leaderboard.py."""

from __future__ import annotations

import numpy as np

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.operating_points import RANKED, choose_thresholds, ranked_metric


def _scores(rng: np.random.Generator, y: np.ndarray, skill: float) -> np.ndarray:
    logit = rng.normal(0, 1, len(y)) + skill * (2 * y - 1)
    return 1 / (1 + np.exp(-logit))


def _two_class(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], 1)


def _ranked(metric: str, y_val, p_val, y_test, p_test) -> float:
    thresholds = choose_thresholds(y_val, p_val, sensitivity=0.95, specificity=0.90)
    one = np.ones((1, len(y_test)))
    return float(ranked_metric(metric, y_test, p_test, thresholds, one, OperatingPointsConfig())[0])


def test_a_constant_or_random_model_is_never_champion_by_any_metric() -> None:
    rng = np.random.default_rng(0)
    y_val, y_test = (rng.random(300) < 0.62).astype(int), (rng.random(600) < 0.62).astype(int)
    good = (_two_class(_scores(rng, y_val, 1.5)), _two_class(_scores(rng, y_test, 1.5)))
    always_sick = (_two_class(np.full(300, 0.99)), _two_class(np.full(600, 0.99)))
    random = (_two_class(rng.random(300)), _two_class(rng.random(600)))
    for metric in RANKED:
        best = _ranked(metric, y_val, good[0], y_test, good[1])
        for other in (always_sick, random):
            assert _ranked(metric, y_val, other[0], y_test, other[1]) < best, metric
    # at argmax the over-caller would have won by recall: what the old leaderboard ranked
    assert (always_sick[1].argmax(1)[y_test == 1] == 1).mean() == 1.0


def test_a_model_whose_roc_curve_dominates_is_not_ranked_below_by_recall() -> None:
    rng = np.random.default_rng(1)
    y_val, y_test = (rng.random(400) < 0.6).astype(int), (rng.random(800) < 0.6).astype(int)
    logit_val, logit_test = rng.normal(0, 1.5, 400), rng.normal(0, 1.5, 800)
    weak = [
        1 / (1 + np.exp(-(z + 0.8 * (2 * y - 1))))
        for z, y in ((logit_val, y_val), (logit_test, y_test))
    ]
    # the same scores with every positive moved up: its ROC curve lies above the weak one's
    strong = [
        1 / (1 + np.exp(-(z + 0.8 * (2 * y - 1) + 1.0 * y)))
        for z, y in ((logit_val, y_val), (logit_test, y_test))
    ]
    recall = [
        _ranked("recall", y_val, _two_class(v), y_test, _two_class(t)) for v, t in (weak, strong)
    ]
    assert recall[1] >= recall[0]
