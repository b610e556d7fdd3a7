"""How sure a ranking is: bootstrap intervals, paired tests, operating points and calibration.

Everything here works from predictions alone (labels and class probabilities of the same test
images), so the leaderboard can recompute every number from the logged predictions CSV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pneumobench.benchmark.metrics import (
    classification_metrics,
    is_pneumonia,
    pneumonia_score,
)

# --- bootstrap ----------------------------------------------------------------------------


def stratified_resamples(y_true: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) indices, each resample drawn with replacement within every class, so each
    keeps the test set's class counts (and every metric stays defined)."""
    rng = np.random.default_rng(seed)
    y_true = np.asarray(y_true)
    out = np.empty((n_resamples, len(y_true)), dtype=np.int64)
    start = 0
    for cls in np.unique(y_true):
        members = np.flatnonzero(y_true == cls)
        out[:, start : start + len(members)] = rng.choice(members, (n_resamples, len(members)))
        start += len(members)
    return out


def binary_vectorized(
    y: np.ndarray, p: np.ndarray, threshold: float = 0.5
) -> dict[str, np.ndarray]:
    """The threshold metrics and ROC AUC for many resamples at once: rows are resamples."""
    pred = p >= threshold
    pos = y == 1
    tp = (pred & pos).sum(1).astype(float)
    fp = (pred & ~pos).sum(1).astype(float)
    fn = (~pred & pos).sum(1).astype(float)
    tn = (~pred & ~pos).sum(1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / (tp + fn)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        n_pos, n_neg = pos.sum(1), (~pos).sum(1)
        ranks = stats.rankdata(p, axis=1)  # Mann-Whitney form of the ROC AUC, ties averaged
        auc = ((ranks * pos).sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return {
        "pr_auc": _average_precision(y, p),
        "accuracy": (tp + tn) / y.shape[1],
        "precision": precision,
        "recall": recall,
        "specificity": tn / (tn + fp),
        "f1": f1,
        "roc_auc": auc,
    }


def _average_precision(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """scikit-learn's average precision, row by row, vectorized: each positive contributes the
    precision at the threshold that closes its group of tied scores."""
    order = np.argsort(-p, axis=1, kind="stable")
    scores = np.take_along_axis(p, order, 1)
    labels = np.take_along_axis(y, order, 1).astype(float)
    tp = np.cumsum(labels, 1)
    precision = tp / np.arange(1, p.shape[1] + 1)
    closes = np.ones(p.shape, dtype=bool)
    closes[:, :-1] = scores[:, :-1] != scores[:, 1:]
    index = np.where(closes, np.arange(p.shape[1]), p.shape[1] - 1)
    group_end = np.minimum.accumulate(index[:, ::-1], axis=1)[:, ::-1]
    at_threshold = np.take_along_axis(precision, group_end, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (labels * at_threshold).sum(1) / labels.sum(1)


def bootstrap_distribution(
    y_true: np.ndarray, probs: np.ndarray, resamples: np.ndarray
) -> dict[str, np.ndarray]:
    """Every test metric on every resample."""
    if probs.shape[1] == 2:
        return binary_vectorized(y_true[resamples], probs[:, 1][resamples])
    names = tuple(str(i) for i in range(probs.shape[1]))
    rows = [classification_metrics(y_true[idx], probs[idx], names) for idx in resamples]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of the finite values (NaN, NaN if none)."""
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def bootstrap_intervals(
    y_true: np.ndarray,
    probs: np.ndarray,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    class_names: tuple[str, ...] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every metric; multiclass names follow ``classification_metrics``."""
    resamples = stratified_resamples(y_true, n_resamples, seed)
    dist = bootstrap_distribution(np.asarray(y_true), probs, resamples)
    if class_names is not None and probs.shape[1] > 2:
        dist = {_rename(k, class_names): v for k, v in dist.items()}
    return {k: percentile_interval(v, level) for k, v in dist.items()}


def _rename(key: str, class_names: tuple[str, ...]) -> str:
    head, _, tail = key.rpartition("_")
    return f"{head}_{class_names[int(tail)]}" if tail.isdigit() and head else key


# --- paired comparisons on the same test images ------------------------------------------


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """Discordant counts (a right & b wrong, a wrong & b right) and the exact two-sided p-value."""
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    if b + c == 0:
        return b, c, 1.0
    return b, c, float(stats.binomtest(b, b + c, 0.5).pvalue)


def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def delong_test(
    y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray
) -> tuple[float, float, float]:
    """DeLong, DeLong & Clarke-Pearson (1988) test of two correlated ROC AUCs, in the fast
    midrank form of Sun & Xu (2014). Returns (auc_a, auc_b, two-sided p-value)."""
    y_true = np.asarray(y_true).astype(bool)
    pos, neg = np.flatnonzero(y_true), np.flatnonzero(~y_true)
    m, n = len(pos), len(neg)
    aucs, v01, v10 = [], [], []
    for score in (np.asarray(score_a, float), np.asarray(score_b, float)):
        tx, ty = _midrank(score[pos]), _midrank(score[neg])
        tz = _midrank(np.concatenate([score[pos], score[neg]]))
        aucs.append(tz[:m].sum() / (m * n) - (m + 1) / (2 * n))
        v01.append((tz[:m] - tx) / n)  # placement of each positive among the negatives
        v10.append(1.0 - (tz[m:] - ty) / m)  # placement of each negative among the positives
    s01, s10 = np.cov(np.vstack(v01)), np.cov(np.vstack(v10))
    cov = s01 / m + s10 / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = aucs[0] - aucs[1]
    if var <= 0:
        return float(aucs[0]), float(aucs[1]), 1.0 if diff == 0 else 0.0
    z = diff / math.sqrt(var)
    return float(aucs[0]), float(aucs[1]), float(2 * stats.norm.sf(abs(z)))


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), order preserved."""
    order = np.argsort(p_values)
    adjusted = np.empty(len(p_values))
    running = 0.0
    k = len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


@dataclass
class PairedComparison:
    """One model against the champion on the same test images."""

    difference: float  # model - champion, on the ranking metric
    diff_ci: tuple[float, float]
    p_bootstrap: float
    mcnemar_b: int
    mcnemar_c: int
    p_mcnemar: float
    p_delong: float


def paired_comparison(
    y_true: np.ndarray,
    probs_model: np.ndarray,
    probs_champion: np.ndarray,
    metric: str,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    thresholds: tuple[float, float] | None = None,
) -> PairedComparison:
    """The same resampled test images for both models: the interval of the metric difference.

    ``op_*`` metrics compare pneumonia-vs-normal decisions at each model's own (validation-chosen)
    threshold, given in ``thresholds`` as (model, champion).
    """
    y_true = np.asarray(y_true)
    resamples = stratified_resamples(y_true, n_resamples, seed)
    if metric.startswith("op_"):
        if thresholds is None:
            raise ValueError("op_* metrics need the two models' thresholds")
        name, sick = metric.removeprefix("op_"), is_pneumonia(y_true)
        everything = np.arange(len(y_true))[None]
        a, b, full_a, full_b = (
            binary_vectorized(sick[rows], pneumonia_score(p)[rows], t)[name]
            for rows in (resamples, everything)
            for p, t in ((probs_model, thresholds[0]), (probs_champion, thresholds[1]))
        )
        full = float(full_a[0] - full_b[0])
    else:
        a = bootstrap_distribution(y_true, probs_model, resamples)[metric]
        b = bootstrap_distribution(y_true, probs_champion, resamples)[metric]
        names = _names(probs_model)
        full = (
            classification_metrics(y_true, probs_model, names)[metric]
            - classification_metrics(y_true, probs_champion, names)[metric]
        )
    diffs = a - b
    finite = diffs[np.isfinite(diffs)]
    p_boot = (
        min(1.0, 2 * min(np.mean(finite <= 0), np.mean(finite >= 0))) if len(finite) else math.nan
    )
    correct_a = probs_model.argmax(1) == y_true
    correct_b = probs_champion.argmax(1) == y_true
    b_count, c_count, p_mcnemar = mcnemar_exact(correct_a, correct_b)
    _, _, p_delong = delong_test(
        is_pneumonia(y_true), pneumonia_score(probs_model), pneumonia_score(probs_champion)
    )
    return PairedComparison(
        float(full),
        percentile_interval(diffs),
        float(p_boot),
        b_count,
        c_count,
        p_mcnemar,
        p_delong,
    )


def _names(probs: np.ndarray) -> tuple[str, ...]:
    return tuple(str(i) for i in range(probs.shape[1]))


# --- operating point and calibration -----------------------------------------------------


def threshold_for_recall(y_true: np.ndarray, p_positive: np.ndarray, target: float) -> float:
    """The highest threshold whose recall on these (validation) labels reaches ``target``."""
    positives = np.sort(np.asarray(p_positive)[np.asarray(y_true) == 1])
    if not len(positives):
        return 0.5
    k = math.floor((1 - target) * len(positives) + 1e-9)  # positives we may miss
    return float(positives[min(k, len(positives) - 1)])


def expected_calibration_error(
    y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15
) -> tuple[float, list[tuple[float, float, int]]]:
    """ECE of the top-class confidence; also the (confidence, accuracy, count) of each bin."""
    confidence = probs.max(1)
    correct = probs.argmax(1) == np.asarray(y_true)
    edges = np.linspace(0, 1, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    ece, table = 0.0, []
    for k in range(n_bins):
        mask = bins == k
        if mask.any():
            conf, acc = float(confidence[mask].mean()), float(correct[mask].mean())
            ece += mask.mean() * abs(acc - conf)
            table.append((conf, acc, int(mask.sum())))
    return float(ece), table
