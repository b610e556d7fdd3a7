"""Calibration of the deployed score P(pneumonia): ECE, Brier score, and the logistic
recalibration's intercept and slope, each under any number of bootstrap weights.

Everything is about the score the operating points threshold (``pneumonia_score``: P(pneumonia),
or 1 - P(normal) with three classes), because that is the probability a clinician is shown.

- **ECE**: equal-width bins of the score; the count-weighted mean of |observed pneumonia
  fraction - mean score| per bin.
- **Brier score**: the mean squared difference between the score and the outcome (0/1).
- **Calibration intercept** (calibration-in-the-large): ``a`` of ``logit P(y) = a + logit(s)``
  (the score's logit as an offset); 0 when the predicted risks are right on average, below 0
  when they are too high.
- **Calibration slope**: ``b`` of ``logit P(y) = a + b logit(s)``; 1 for a calibrated model,
  below 1 when its risks are too extreme (over-confident), above 1 when too timid.

Both logistic fits are Newton iterations vectorised over the rows of the weights, so the
patient-clustered bootstrap (``statistics.cluster_weights``) gives their intervals as it gives
every other metric's. A resample where the outcome is separated perfectly by the score has no
finite slope: it is NaN there and left out of the interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pneumobench.evaluate.metrics import is_pneumonia, pneumonia_score

CALIBRATION_METRICS = ("ece", "brier", "calibration_intercept", "calibration_slope")
_EPS = 1e-6  # scores are clipped to [eps, 1 - eps] before their logit
_NEWTON_STEPS = 50
_SLOPE_LIMIT = 1e3  # beyond this the fit is chasing a separated resample


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability diagram."""

    mean_score: float
    observed: float  # the fraction of pneumonia among the bin's images
    count: int


def _bins(score: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.linspace(0, 1, n_bins + 1)
    return np.clip(np.digitize(score, edges[1:-1], right=True), 0, n_bins - 1)


def _logit(score: np.ndarray) -> np.ndarray:
    s = np.clip(score, _EPS, 1 - _EPS)
    return np.log(s / (1 - s))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def expected_calibration_error(
    sick: np.ndarray, score: np.ndarray, w: np.ndarray, n_bins: int
) -> np.ndarray:
    """ECE of the score under each row of weights ``w`` (R, n)."""
    onehot = np.eye(n_bins)[_bins(score, n_bins)]  # (n, B)
    gap = w @ (onehot * (sick.astype(float) - score)[:, None])  # (R, B): sum of y - s per bin
    return np.abs(gap).sum(1) / w.sum(1)


def brier_score(sick: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mean squared error of the score against the outcome, under each row of weights."""
    return (w @ (score - sick.astype(float)) ** 2) / w.sum(1)


def calibration_intercept(sick: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a`` of ``logit P(y) = a + logit(score)`` (weighted maximum likelihood), per row."""
    y, offset = sick.astype(float), _logit(score)
    a = np.zeros(len(w))
    for _ in range(_NEWTON_STEPS):
        p = _sigmoid(a[:, None] + offset)
        gradient = (w * (y - p)).sum(1)
        curvature = (w * p * (1 - p)).sum(1)
        step = np.divide(gradient, curvature, out=np.zeros_like(a), where=curvature > 0)
        a += step
        if np.all(np.abs(step) < 1e-10):
            break
    return a


def calibration_slope(sick: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``b`` of ``logit P(y) = a + b logit(score)`` (weighted maximum likelihood), per row;
    NaN where no finite maximum exists (the score separates the outcome)."""
    y, x = sick.astype(float), _logit(score)
    theta = np.zeros((len(w), 2))  # (a, b)
    theta[:, 1] = 1.0
    converged = np.zeros(len(w), dtype=bool)
    for _ in range(_NEWTON_STEPS):
        p = _sigmoid(theta[:, :1] + theta[:, 1:] * x)
        residual, v = w * (y - p), w * p * (1 - p)
        gradient = np.stack([residual.sum(1), (residual * x).sum(1)], 1)
        hessian = np.empty((len(w), 2, 2))
        hessian[:, 0, 0] = v.sum(1)
        hessian[:, 0, 1] = hessian[:, 1, 0] = (v * x).sum(1)
        hessian[:, 1, 1] = (v * x * x).sum(1)
        singular = np.abs(np.linalg.det(hessian)) < 1e-12
        hessian[singular] = np.eye(2)
        step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        step[singular] = 0.0
        theta += step
        converged = np.abs(step).max(1) < 1e-8
        if converged.all():
            break
    slope = theta[:, 1]
    finite = converged & (np.abs(slope) < _SLOPE_LIMIT) & ~_separated(y > 0, x, w)
    return np.where(finite, slope, np.nan)


def _separated(sick: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row of weights: whether the drawn images' scores separate the outcome completely
    (or one class is missing), where logistic regression has no finite maximum."""
    drawn = w > 0
    pos, neg = drawn & sick, drawn & ~sick
    pos_min = np.where(pos, x, np.inf).min(1)
    pos_max = np.where(pos, x, -np.inf).max(1)
    neg_min = np.where(neg, x, np.inf).min(1)
    neg_max = np.where(neg, x, -np.inf).max(1)
    return (neg_max < pos_min) | (pos_max < neg_min) | ~pos.any(1) | ~neg.any(1)


def calibration_metrics(
    y: np.ndarray, probs: np.ndarray, w: np.ndarray, n_bins: int
) -> dict[str, np.ndarray]:
    """Every calibration metric of the pneumonia score under each row of weights ``w``."""
    sick, score = is_pneumonia(np.asarray(y)), pneumonia_score(np.asarray(probs))
    return {
        "ece": expected_calibration_error(sick, score, w, n_bins),
        "brier": brier_score(sick, score, w),
        "calibration_intercept": calibration_intercept(sick, score, w),
        "calibration_slope": calibration_slope(sick, score, w),
    }


def reliability_bins(y: np.ndarray, probs: np.ndarray, n_bins: int) -> list[ReliabilityBin]:
    """The reliability diagram's non-empty bins of the pneumonia score."""
    sick, score = is_pneumonia(np.asarray(y)), pneumonia_score(np.asarray(probs))
    bins = _bins(score, n_bins)
    return [
        ReliabilityBin(float(score[bins == k].mean()), float(sick[bins == k].mean()), int(n))
        for k in range(n_bins)
        if (n := int(np.sum(bins == k)))
    ]
