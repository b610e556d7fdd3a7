"""How sure a ranking is: bootstrap intervals and paired tests (calibration: ``calibration``).

Everything here works from predictions alone (labels and class probabilities of the same test
images), so the leaderboard can recompute every number from the logged predictions CSV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.metrics import (
    classification_metrics,
    is_pneumonia,
    pneumonia_score,
)
from pneumobench.evaluate.operating_points import ranked_metric
from pneumobench.evaluate.weighted import curve_metrics, weighted_binary

# --- bootstrap: patients are resampled, not images ----------------------------------------
#
# Test images come in patient clusters (a child with several X-rays): resampling images treats
# them as independent and gives intervals that are too narrow. Every bootstrap here resamples
# *patients*, stratified by class at the patient level, and expresses a resample as weights:
# ``W[r, i]`` is how often image ``i``'s patient was drawn in resample ``r``. Where no patient ids
# exist, each image is its own patient (the plain stratified image bootstrap). With weights, one
# sort of the scores serves every resample, and both models of a paired comparison see the same
# resampled patients.


def cluster_weights(
    y_true: np.ndarray, groups: list[str] | np.ndarray | None, n_resamples: int, seed: int
) -> np.ndarray:
    """(n_resamples, n) weights: patients drawn with replacement within each class (a patient's
    class is its first image's), so each resample keeps the number of patients per class."""
    y_true = np.asarray(y_true)
    n = len(y_true)
    if groups is None:
        codes = np.arange(n)
    else:  # patients numbered in order of first appearance: singletons draw like images
        index: dict[str, int] = {}
        codes = np.array([index.setdefault(str(g), len(index)) for g in groups], dtype=np.int64)
    first = {}
    for i, c in enumerate(codes):
        first.setdefault(int(c), int(y_true[i]))
    n_clusters = int(codes.max()) + 1 if n else 0
    counts = np.zeros((n_resamples, n_clusters))
    rng = np.random.default_rng(seed)
    cluster_class = np.array([first[c] for c in range(n_clusters)])
    for cls in np.unique(cluster_class):
        members = np.flatnonzero(cluster_class == cls)
        drawn = rng.choice(members, (n_resamples, len(members)))
        for r in range(n_resamples):
            counts[r] += np.bincount(drawn[r], minlength=n_clusters)
    return counts[:, codes]


def bootstrap_distribution(
    y_true: np.ndarray, probs: np.ndarray, w: np.ndarray
) -> dict[str, np.ndarray]:
    """Every argmax test metric on every resample (rows of ``w``)."""
    y_true = np.asarray(y_true)
    if probs.shape[1] == 2:
        at_argmax = weighted_binary(y_true == 1, probs[:, 1] >= 0.5, w)
        at_argmax.pop("npv")  # the argmax block reports the seven leaderboard metrics
        return {**at_argmax, **curve_metrics(y_true, probs, w)}
    names = tuple(str(i) for i in range(probs.shape[1]))
    rows = []
    for weights in w:  # three classes: scikit-learn per resample (at evaluation time only)
        idx = np.repeat(np.arange(len(y_true)), weights.astype(int))
        rows.append(classification_metrics(y_true[idx], probs[idx], names))
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
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
    n_resamples: int,
    seed: int,
    level: float,
    class_names: tuple[str, ...] | None = None,
    groups: list[str] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every argmax metric, patients resampled (``groups``: the patient
    of each image; None: each image its own); multiclass names follow ``classification_metrics``."""
    w = cluster_weights(y_true, groups, n_resamples, seed)
    dist = bootstrap_distribution(np.asarray(y_true), probs, w)
    if class_names is not None and probs.shape[1] > 2:
        dist = {rename_classes(k, class_names): v for k, v in dist.items()}
    return {k: percentile_interval(v, level) for k, v in dist.items()}


def rename_classes(key: str, class_names: tuple[str, ...]) -> str:
    """``recall_2`` -> ``recall_virus``: class indices in metric names become class names."""
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
    """One model against the champion on the same test images, about the ranked quantity."""

    difference: float  # model - champion, the ranked metric on the full test set
    diff_ci: tuple[float, float]  # its patient-clustered paired-bootstrap interval
    p_bootstrap: float  # two-sided, from the same resamples: the test that decides the group
    mcnemar_b: int  # image-level extras (they ignore patient clusters): argmax decisions
    mcnemar_c: int
    p_mcnemar: float
    p_delong: float  # image-level DeLong on the pneumonia score's ROC AUC


def paired_comparison(
    y_true: np.ndarray,
    model: list[tuple[np.ndarray, dict[str, float]]],
    champion: list[tuple[np.ndarray, dict[str, float]]],
    metric: str,
    *,
    n_resamples: int,
    seed: int,
    level: float,
    targets: OperatingPointsConfig,
    groups: list[str] | None = None,
) -> PairedComparison:
    """The ranked ``metric`` (a leaderboard name, see ``operating_points.RANKED``) of a model and
    of the champion on the same resampled patients; each side is a list of (probabilities,
    validation-chosen thresholds), one per seed, whose mean is the ranked quantity."""
    y_true = np.asarray(y_true)
    w = cluster_weights(y_true, groups, n_resamples, seed)
    full = np.ones((1, len(y_true)))

    def value(side: list[tuple[np.ndarray, dict[str, float]]], weights: np.ndarray) -> np.ndarray:
        values = [ranked_metric(metric, y_true, p, t, weights, targets) for p, t in side]
        return np.mean(values, axis=0)

    diffs = value(model, w) - value(champion, w)
    difference = float((value(model, full) - value(champion, full))[0])
    finite = diffs[np.isfinite(diffs)]
    p_boot = (
        min(1.0, 2 * min(np.mean(finite <= 0), np.mean(finite >= 0))) if len(finite) else math.nan
    )
    # the image-level extras on each side's seed-averaged probabilities (one model: its own)
    probs_model = np.mean([p for p, _ in model], axis=0)
    probs_champion = np.mean([p for p, _ in champion], axis=0)
    correct_a = probs_model.argmax(1) == y_true
    correct_b = probs_champion.argmax(1) == y_true
    b_count, c_count, p_mcnemar = mcnemar_exact(correct_a, correct_b)
    _, _, p_delong = delong_test(
        is_pneumonia(y_true), pneumonia_score(probs_model), pneumonia_score(probs_champion)
    )
    return PairedComparison(
        difference,
        percentile_interval(diffs, level),
        float(p_boot),
        b_count,
        c_count,
        p_mcnemar,
        p_delong,
    )
