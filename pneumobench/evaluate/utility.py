"""Clinical utility: net benefit over threshold probabilities (the decision curve).

A clinician who would treat (or X-ray again, or refer) at threshold probability ``pt`` weighs a
false positive ``pt / (1 - pt)`` times a true positive (Vickers & Elkin 2006). The net benefit of
deciding "pneumonia" where the score reaches ``pt`` is

    NB(pt) = TP / n - FP / n * pt / (1 - pt)

against two defaults: treat everybody (``prevalence - (1 - prevalence) pt / (1 - pt)``) and treat
nobody (0). A model is useful at ``pt`` where its curve lies above both. The formula is the one
``dcurves.dca`` computes (the tests check it against dcurves), here without pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pneumobench.evaluate.metrics import is_pneumonia, pneumonia_score


@dataclass(frozen=True)
class DecisionCurve:
    """Net benefit of one model, and of the two defaults, at each threshold probability."""

    thresholds: np.ndarray
    model: np.ndarray
    treat_all: np.ndarray
    treat_none: np.ndarray


def threshold_grid(low: float, high: float, step: float = 0.01) -> np.ndarray:
    """The threshold probabilities a decision curve is drawn over (both ends included)."""
    return np.round(np.arange(low, high + step / 2, step), 10)


def net_benefit(sick: np.ndarray, score: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """NB of deciding positive where ``score >= pt``, for each ``pt`` in ``thresholds``."""
    sick = np.asarray(sick).astype(bool)
    score = np.asarray(score, dtype=float)
    n = len(sick)
    positive = score[None, :] >= thresholds[:, None]  # (T, n)
    tp = (positive & sick).sum(1) / n
    fp = (positive & ~sick).sum(1) / n
    return tp - fp * thresholds / (1 - thresholds)


def decision_curve(y: np.ndarray, probs: np.ndarray, thresholds: np.ndarray) -> DecisionCurve:
    """The decision curve of a model's pneumonia score on these labels."""
    sick, score = is_pneumonia(np.asarray(y)), pneumonia_score(np.asarray(probs))
    prevalence = float(np.mean(sick))
    odds = thresholds / (1 - thresholds)
    return DecisionCurve(
        thresholds=thresholds,
        model=net_benefit(sick, score, thresholds),
        treat_all=prevalence - (1 - prevalence) * odds,
        treat_none=np.zeros_like(thresholds),
    )
