"""Decision thresholds chosen on validation, and the leaderboard metric each one serves.

A threshold metric (recall, specificity, precision, F1, accuracy) means nothing without its
threshold, and the argmax (0.5) threshold means nothing under class-weighted training: a model
that calls everything pneumonia has recall 1. So every rankable threshold metric is measured at an
operating point chosen on the final model's VALIDATION predictions, then applied once to test:

| ranked by   | measured at the threshold that, on validation, ...          | MLflow name             |
|-------------|--------------------------------------------------------------|-------------------------|
| recall      | reaches the target specificity (default 0.90)                | ``test_at_spec_recall`` |
| specificity | reaches the target sensitivity (default 0.95)                | ``test_at_sens_specificity`` |
| precision   | reaches the target sensitivity                               | ``test_at_sens_precision`` |
| f1          | maximizes F1                                                 | ``test_at_f1_f1``       |
| accuracy    | maximizes accuracy                                           | ``test_at_acc_accuracy`` |
| roc_auc, pr_auc | (no threshold)                                           | ``test_roc_auc``, ``test_pr_auc`` |

Ranking by recall therefore compares sensitivity at a fixed specificity: a model cannot win by
calling more images pneumonia, because its threshold is set so that it may not. The metric an
operating point fixes (recall at the sensitivity point) is never what is ranked there.

Three classes: the thresholds decide any pneumonia vs normal (score 1 - P(normal), the clinical
question); ``roc_auc`` / ``pr_auc`` are the macro one-vs-rest values. Every metric of every point is
logged as ``test_at_<point>_<metric>`` with its interval; the argmax values keep their own names.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import precision_recall_curve

from pneumobench.evaluate.metrics import is_pneumonia, pneumonia_score
from pneumobench.evaluate.weighted import curve_metrics, weighted_binary
from pneumobench.tracking.schema import POINTS, RANKED, point_metric, ranked_name, threshold_name

__all__ = ["POINTS", "RANKED", "point_metric", "ranked_name", "threshold_name"]  # + below

THRESHOLD_METRICS = ("accuracy", "precision", "recall", "specificity", "f1")


def describe(metric: str, sensitivity: float, specificity: float) -> str:
    """Where a ranked number is measured, in words for tables and reports."""
    point, _ = RANKED[metric]
    return {
        None: f"{metric} (no threshold)",
        "sens": f"{metric} at the threshold reaching sensitivity {sensitivity:g} on validation",
        "spec": f"{metric} at the threshold reaching specificity {specificity:g} on validation",
        "f1": f"{metric} at the threshold maximizing validation F1",
        "acc": f"{metric} at the threshold maximizing validation accuracy",
    }[point]


def threshold_for_recall(y_true: np.ndarray, p_positive: np.ndarray, target: float) -> float:
    """The highest threshold whose recall on these (validation) labels reaches ``target``."""
    positives = np.sort(np.asarray(p_positive)[np.asarray(y_true) == 1])
    if not len(positives):
        return 0.5
    k = math.floor((1 - target) * len(positives) + 1e-9)  # positives we may miss
    return float(positives[min(k, len(positives) - 1)])


def threshold_for_specificity(y_true: np.ndarray, score: np.ndarray, target: float) -> float:
    """The lowest threshold (decide positive at ``score >= t``) whose specificity on these
    validation labels reaches ``target``."""
    negatives = np.sort(np.asarray(score, dtype=float)[np.asarray(y_true) == 0])
    if not len(negatives):
        return 0.5
    k = math.ceil(target * len(negatives) - 1e-9)  # negatives that must fall below t
    if k <= 0:
        return float(negatives[0])
    return float(np.nextafter(negatives[k - 1], np.inf))


def threshold_for_best(y_true: np.ndarray, score: np.ndarray, metric: str) -> float:
    """The validation threshold maximizing F1 or accuracy (ties: the highest threshold)."""
    y_true, score = np.asarray(y_true).astype(int), np.asarray(score, dtype=float)
    if metric == "f1":
        precision, recall, thresholds = precision_recall_curve(y_true, score)
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
        best = np.flatnonzero(f1 == f1.max())
        return float(thresholds[best[-1]])
    candidates = np.append(np.unique(score), np.inf)
    accuracy = [np.mean((score >= t) == y_true) for t in candidates]
    best = np.flatnonzero(np.asarray(accuracy) == max(accuracy))
    return float(candidates[best[-1]])


def choose_thresholds(
    y_val: np.ndarray, val_probs: np.ndarray, sensitivity: float, specificity: float
) -> dict[str, float]:
    """Every operating point's threshold, from validation predictions only."""
    sick, score = is_pneumonia(y_val), pneumonia_score(val_probs)
    return {
        "sens": threshold_for_recall(sick, score, sensitivity),
        "spec": threshold_for_specificity(sick, score, specificity),
        "f1": threshold_for_best(sick, score, "f1"),
        "acc": threshold_for_best(sick, score, "accuracy"),
    }


def metrics_at(
    y: np.ndarray, probs: np.ndarray, thresholds: dict[str, float], w: np.ndarray
) -> dict[str, np.ndarray]:
    """``at_<point>_<metric>`` of every point under each row of weights ``w`` (R, n)."""
    sick, score = is_pneumonia(y), pneumonia_score(probs)
    out = {}
    for point, threshold in thresholds.items():
        for name, values in weighted_binary(sick, score >= threshold, w).items():
            out[point_metric(point, name)] = values
    return out


def ranked_metric(
    metric: str, y: np.ndarray, probs: np.ndarray, thresholds: dict[str, float], w: np.ndarray
) -> np.ndarray:
    """The leaderboard's ``metric`` under each row of weights: what is ranked and tested."""
    point, name = RANKED[metric]
    y = np.asarray(y)
    if point is None:
        return curve_metrics(y, probs, w)[name]
    decision = pneumonia_score(probs) >= thresholds[point]
    return weighted_binary(is_pneumonia(y), decision, w)[name]
