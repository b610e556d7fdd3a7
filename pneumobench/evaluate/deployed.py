"""What a validation-chosen operating point achieved on test, with an interval that includes the
threshold's own uncertainty.

A threshold chosen on validation is itself an estimate: another draw of validation patients
would have put it elsewhere. So each bootstrap round here resamples the VALIDATION patients
(stratified by class, as every bootstrap of the project), re-chooses every threshold on that
resample by the same rule as the final evaluation (``operating_points.choose_thresholds``),
resamples the TEST patients independently, and measures the test metrics at the re-chosen
threshold. The percentile intervals of those values are the deployed block's intervals; they
are never narrower than the test-only ones in expectation, and shrink toward them as
validation grows. The spread of the re-chosen thresholds is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.metrics import is_pneumonia, pneumonia_score
from pneumobench.evaluate.operating_points import point_metric
from pneumobench.evaluate.statistics import cluster_weights, percentile_interval
from pneumobench.evaluate.weighted import curve_points


@dataclass(frozen=True)
class Resampled:
    """Labels, pneumonia scores and patient groups of one split."""

    sick: np.ndarray
    score: np.ndarray
    groups: list[str] | None

    @classmethod
    def of(cls, y: np.ndarray, probs: np.ndarray, groups: list[str] | None) -> Resampled:
        """From class labels and class probabilities (any pneumonia vs normal)."""
        return cls(is_pneumonia(y).astype(bool), pneumonia_score(probs), groups)


def threshold_for_specificity_w(
    sick: np.ndarray, score: np.ndarray, w: np.ndarray, target: float
) -> np.ndarray:
    """Per row of weights: the lowest threshold whose weighted validation specificity reaches
    ``target`` (``operating_points.threshold_for_specificity`` under weights)."""
    neg = np.flatnonzero(~sick)
    order = neg[np.argsort(score[neg], kind="stable")]
    cum = np.cumsum(w[:, order], axis=1)
    need = target * cum[:, -1:] - 1e-9
    j = np.argmax(cum >= need, axis=1)
    out = np.nextafter(score[order][j], np.inf)
    return np.where(need[:, 0] <= 0, score[order][0], out)


def threshold_for_recall_w(
    sick: np.ndarray, score: np.ndarray, w: np.ndarray, target: float
) -> np.ndarray:
    """Per row of weights: the highest threshold whose weighted validation recall reaches
    ``target`` (``operating_points.threshold_for_recall`` under weights)."""
    pos = np.flatnonzero(sick)
    order = pos[np.argsort(score[pos], kind="stable")]
    weights = w[:, order]
    before = np.cumsum(weights, axis=1) - weights  # positives below each one
    allowed = (1 - target) * weights.sum(1, keepdims=True) + 1e-9  # we may miss this much
    ok = (before <= allowed) & (weights > 0)
    j = weights.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)  # the last allowed one
    return score[order][j]


def threshold_for_best_w(
    sick: np.ndarray, score: np.ndarray, w: np.ndarray, metric: str
) -> np.ndarray:
    """Per row of weights: the validation threshold maximizing weighted F1 or accuracy (ties:
    the highest threshold), as ``operating_points.threshold_for_best``."""
    cuts, tp, fp = curve_points(sick, score, w)
    positives, negatives = tp[:, -1:], fp[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "f1":
            value = np.nan_to_num(2 * tp / (tp + fp + positives))
        else:
            value = (tp + negatives - fp) / (positives + negatives)
    thresholds = np.append(np.inf, cuts)  # column 0: nothing positive
    return thresholds[np.argmax(value, axis=1)]


def rechosen_thresholds(
    val: Resampled, w: np.ndarray, targets: OperatingPointsConfig
) -> dict[str, np.ndarray]:
    """Every operating point's threshold on each resample of validation."""
    return {
        "sens": threshold_for_recall_w(val.sick, val.score, w, targets.sensitivity),
        "spec": threshold_for_specificity_w(val.sick, val.score, w, targets.specificity),
        "f1": threshold_for_best_w(val.sick, val.score, w, "f1"),
        "acc": threshold_for_best_w(val.sick, val.score, w, "accuracy"),
    }


def metrics_at_thresholds(
    test: Resampled, w: np.ndarray, thresholds: np.ndarray
) -> dict[str, np.ndarray]:
    """Test metrics under each row of weights, each row deciding at its own threshold."""
    decision = test.score[None, :] >= thresholds[:, None]
    pos = test.sick[None, :]
    tp, fp = (w * (decision & pos)).sum(1), (w * (decision & ~pos)).sum(1)
    fn, tn = (w * (~decision & pos)).sum(1), (w * (~decision & ~pos)).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / (tp + fn)
        return {
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "precision": precision,
            "recall": recall,
            "specificity": tn / (tn + fp),
            "npv": np.where(tn + fn > 0, tn / (tn + fn), 0.0),
            "f1": np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
        }


def deployed_intervals(
    val: Resampled,
    test: Resampled,
    targets: OperatingPointsConfig,
    *,
    n_resamples: int,
    seed: int,
    level: float,
) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """Threshold-inclusive intervals of every ``at_<point>_<metric>``, and the interval of each
    point's re-chosen threshold (keyed by point)."""
    w_val = cluster_weights(val.sick.astype(int), val.groups, n_resamples, seed + 1)
    w_test = cluster_weights(test.sick.astype(int), test.groups, n_resamples, seed)
    intervals: dict[str, tuple[float, float]] = {}
    spread: dict[str, tuple[float, float]] = {}
    for point, thresholds in rechosen_thresholds(val, w_val, targets).items():
        finite = thresholds[np.isfinite(thresholds)]
        spread[point] = percentile_interval(finite, level)
        for name, values in metrics_at_thresholds(test, w_test, thresholds).items():
            intervals[point_metric(point, name)] = percentile_interval(values, level)
    return intervals, spread


def target_status(
    point: str, low: float, high: float, targets: OperatingPointsConfig
) -> str | None:
    """How the achieved test interval of the metric a point fixes (specificity at ``spec``,
    sensitivity at ``sens``) stands to its validation target: ``held`` (inside), ``below`` (the
    whole interval under it: did not hold on test), ``above``; None for points without one."""
    target = {"spec": targets.specificity, "sens": targets.sensitivity}.get(point)
    if target is None or not (np.isfinite(low) and np.isfinite(high)):
        return None
    if high < target:
        return "below"
    return "above" if low > target else "held"
