"""What the leaderboard ranks, in two blocks, and the decision thresholds chosen on validation.

**Block 1, discrimination** (what ``--metric recall | specificity | precision | f1 | roc_auc |
pr_auc | accuracy`` ranks): read off each model's own TEST curves, with no threshold carried
over from validation, so sliding along its ROC curve cannot move a model up.

| ranked by   | what is ranked (test set)                                               | MLflow name |
|-------------|--------------------------------------------------------------------------|-------------|
| recall      | the best sensitivity among ROC points with specificity >= target (0.90)  | ``test_roc_sens_at_spec`` |
| specificity | the best specificity among ROC points with sensitivity >= target (0.95)  | ``test_roc_spec_at_sens`` |
| precision   | the best precision among PR points with recall >= target (0.95)          | ``test_pr_precision_at_sens`` |
| f1          | the best F1 on the PR curve (the curve's best; its threshold is test's)  | ``test_pr_best_f1`` |
| roc_auc, pr_auc | the areas                                                            | ``test_roc_auc``, ``test_pr_auc`` |
| accuracy    | at argmax: the field's comparable number (MedMNIST reports it)           | ``test_accuracy`` |

**Block 2, the operating points pre-specified on validation**: each threshold is chosen on the
final model's VALIDATION predictions, then applied once to test; what it achieved there
(``test_at_<point>_<metric>``) carries an interval that includes the threshold's own
uncertainty (``evaluate/deployed.py``). ``spec`` (the threshold reaching the target
specificity) is the deployed one: predict, export and serving decide there. Ranking by it
(``--metric recall@spec`` and the other ``@`` names) compares models at different test
specificities, and the table says so.

Three classes: thresholds and curve reads decide any pneumonia vs normal (score 1 - P(normal),
the clinical question); ``roc_auc`` / ``pr_auc`` are the macro one-vs-rest values.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import precision_recall_curve

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.metrics import is_pneumonia, pneumonia_score
from pneumobench.evaluate.weighted import curve_metrics, curve_reads, weighted_binary
from pneumobench.tracking.schema import (
    CURVE_READS,
    POINTS,
    RANKED,
    point_metric,
    ranked_name,
    threshold_name,
)

__all__ = ["POINTS", "RANKED", "point_metric", "ranked_name", "threshold_name"]  # + below

THRESHOLD_METRICS = ("accuracy", "precision", "recall", "specificity", "npv", "f1")


def describe(metric: str, sensitivity: float, specificity: float) -> str:
    """Where a ranked number is measured, in words for tables and reports."""
    point, name = RANKED[metric]
    if point is None:
        return {
            "roc_sens_at_spec": f"the best test sensitivity at specificity >= {specificity:g}, "
            "read off each model's test ROC curve",
            "roc_spec_at_sens": f"the best test specificity at sensitivity >= {sensitivity:g}, "
            "read off each model's test ROC curve",
            "pr_precision_at_sens": f"the best test precision at recall >= {sensitivity:g}, read "
            "off each model's test PR curve",
            "pr_best_f1": "the best F1 on each model's test PR curve (the curve's best, not a "
            "deployable number)",
            "accuracy": "accuracy at argmax (the field's comparable number)",
        }.get(name, f"{name} (no threshold)")
    return {
        "sens": f"{name} at the threshold reaching sensitivity {sensitivity:g} on validation",
        "spec": f"{name} at the threshold reaching specificity {specificity:g} on validation",
        "f1": f"{name} at the threshold maximizing validation F1",
        "acc": f"{name} at the threshold maximizing validation accuracy",
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
    metric: str,
    y: np.ndarray,
    probs: np.ndarray,
    thresholds: dict[str, float],
    w: np.ndarray,
    targets: OperatingPointsConfig,
) -> np.ndarray:
    """The leaderboard's ``metric`` under each row of weights: what is ranked and tested."""
    point, name = RANKED[metric]
    y = np.asarray(y)
    if point is not None:
        decision = pneumonia_score(probs) >= thresholds[point]
        return weighted_binary(is_pneumonia(y), decision, w)[name]
    if name in CURVE_READS:
        sick, score = is_pneumonia(y), pneumonia_score(probs)
        return curve_reads(sick, score, w, targets.sensitivity, targets.specificity)[name]
    if name == "accuracy":  # argmax
        correct = (np.asarray(probs).argmax(1) == y).astype(float)
        return (w @ correct) / w.sum(1)
    return curve_metrics(y, probs, w)[name]


def read_curves(
    y: np.ndarray, probs: np.ndarray, w: np.ndarray, targets: OperatingPointsConfig
) -> dict[str, np.ndarray]:
    """Block 1's curve reads (``roc_sens_at_spec``, ...) under each row of weights."""
    return curve_reads(
        is_pneumonia(y), pneumonia_score(probs), w, targets.sensitivity, targets.specificity
    )
