"""Tests of pneumobench/evaluate/calibration.py against reference computations: statsmodels'
logistic GLM for intercept and slope, scikit-learn's Brier score, ECE by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.metrics import brier_score_loss

from pneumobench.evaluate.calibration import calibration_metrics, reliability_bins
from pneumobench.evaluate.statistics import cluster_weights, percentile_interval


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def _synthetic(n: int, seed: int, sharpen: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn from true risks; the model reports sigmoid(sharpen * logit(risk))."""
    rng = np.random.default_rng(seed)
    risk = 1 / (1 + np.exp(-rng.normal(0, 1.5, n)))
    y = (rng.uniform(size=n) < risk).astype(int)
    said = 1 / (1 + np.exp(-sharpen * _logit(risk)))
    return y, np.column_stack([1 - said, said])


def _reference(y: np.ndarray, probs: np.ndarray, n_bins: int) -> dict[str, float]:
    s = probs[:, 1]
    lp = _logit(np.clip(s, 1e-6, 1 - 1e-6))
    slope_fit = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
    intercept_fit = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit()
    bins = np.minimum((s * n_bins).astype(int), n_bins - 1)  # equal width, [k/B, (k+1)/B)
    ece = sum(
        abs(y[bins == k].mean() - s[bins == k].mean()) * np.mean(bins == k)
        for k in range(n_bins)
        if np.any(bins == k)
    )
    return {
        "ece": float(ece),
        "brier": float(brier_score_loss(y, s)),
        "calibration_intercept": float(intercept_fit.params[0]),
        "calibration_slope": float(slope_fit.params[1]),
    }


@pytest.mark.parametrize("sharpen", [1.0, 2.0, 0.5])
def test_every_metric_equals_its_reference(sharpen: float) -> None:
    y, probs = _synthetic(3000, seed=1, sharpen=sharpen)
    ours = {
        k: float(v[0]) for k, v in calibration_metrics(y, probs, np.ones((1, len(y))), 10).items()
    }
    reference = _reference(y, probs, 10)
    for name, value in reference.items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name


def test_a_calibrated_model_looks_calibrated_and_an_overconfident_one_does_not() -> None:
    y, calibrated = _synthetic(20000, seed=2)
    _, overconfident = _synthetic(20000, seed=2, sharpen=2.0)
    one = np.ones((1, len(y)))
    good = {k: float(v[0]) for k, v in calibration_metrics(y, calibrated, one, 10).items()}
    bad = {k: float(v[0]) for k, v in calibration_metrics(y, overconfident, one, 10).items()}
    assert good["calibration_slope"] == pytest.approx(1.0, abs=0.05)
    assert good["calibration_intercept"] == pytest.approx(0.0, abs=0.05)
    assert good["ece"] < 0.02
    assert bad["calibration_slope"] == pytest.approx(0.5, abs=0.03)  # risks twice too extreme
    assert bad["ece"] > 3 * good["ece"] and bad["brier"] > good["brier"]


def test_weighted_rows_equal_the_resampled_data_and_give_intervals() -> None:
    y, probs = _synthetic(400, seed=3, sharpen=1.5)
    w = cluster_weights(y, None, 50, seed=0)
    series = calibration_metrics(y, probs, w, 10)
    idx = np.repeat(np.arange(len(y)), w[7].astype(int))  # resample 7, written out
    direct = calibration_metrics(y[idx], probs[idx], np.ones((1, len(idx))), 10)
    for name in series:
        assert series[name][7] == pytest.approx(direct[name][0], abs=1e-6), name
    low, high = percentile_interval(series["calibration_slope"], 0.95)
    assert (
        low
        < float(calibration_metrics(y, probs, np.ones((1, 400)), 10)["calibration_slope"][0])
        < high
    )


def test_a_tiny_case_by_hand() -> None:
    y = np.array([1, 1, 1, 1, 0])
    honest = np.array([[0.2, 0.8]] * 5)  # 80% said, 80% pneumonia
    sure = np.array([[0.0, 1.0]] * 5)
    one = np.ones((1, 5))
    assert calibration_metrics(y, honest, one, 10)["ece"][0] == pytest.approx(0.0)
    assert calibration_metrics(y, sure, one, 10)["ece"][0] == pytest.approx(0.2)
    assert calibration_metrics(y, sure, one, 10)["brier"][0] == pytest.approx(0.2)


def test_a_separating_score_has_no_slope_and_three_classes_use_any_pneumonia() -> None:
    y = np.array([0] * 20 + [1] * 20)
    probs = np.column_stack(
        [np.r_[np.full(20, 0.9), np.full(20, 0.1)], np.r_[np.full(20, 0.1), np.full(20, 0.9)]]
    )
    assert math.isnan(calibration_metrics(y, probs, np.ones((1, 40)), 10)["calibration_slope"][0])
    three = np.column_stack([probs[:, 0], probs[:, 1] / 2, probs[:, 1] / 2])
    y3 = np.r_[np.zeros(20, int), np.ones(10, int), np.full(10, 2)]
    one = np.ones((1, 40))
    assert calibration_metrics(y3, three, one, 10)["brier"][0] == pytest.approx(
        calibration_metrics(y, probs, one, 10)["brier"][0]
    )
    bins = reliability_bins(y, probs, 10)
    assert [(round(b.mean_score, 3), b.observed, b.count) for b in bins] == [
        (0.1, 0.0, 20),
        (0.9, 1.0, 20),
    ]
