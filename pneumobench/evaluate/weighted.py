"""Binary metrics and ROC / PR areas under bootstrap weights: one sort of the scores serves
every resample (``W[r, i]``: how often image ``i``'s patient was drawn in resample ``r``; one row
of ones is the plain value)."""

from __future__ import annotations

import numpy as np


def weighted_binary(
    truth: np.ndarray, decision: np.ndarray, w: np.ndarray
) -> dict[str, np.ndarray]:
    """Threshold metrics of 0/1 ``decision`` against 0/1 ``truth`` under each row of weights."""
    pos, pred = np.asarray(truth).astype(bool), np.asarray(decision).astype(bool)
    tp, fp = w @ (pred & pos), w @ (pred & ~pos)
    fn, tn = w @ (~pred & pos), w @ (~pred & ~pos)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / (tp + fn)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        return {
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "precision": precision,
            "recall": recall,
            "specificity": tn / (tn + fp),
            "npv": np.where(tn + fn > 0, tn / (tn + fn), 0.0),
            "f1": f1,
        }


def _tie_groups(score: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images sorted by score, and the index of each one's group of tied scores."""
    order = np.argsort(-score if descending else score, kind="stable")
    sorted_scores = score[order]
    new_group = np.ones(len(score), dtype=bool)
    new_group[1:] = sorted_scores[1:] != sorted_scores[:-1]
    return order, np.cumsum(new_group) - 1


def _per_group(w: np.ndarray, mask: np.ndarray, order: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(R, groups) summed weights of the ``mask`` images in each group of tied scores."""
    out = np.zeros((w.shape[0], int(group[-1]) + 1))
    selected = w[:, order] * mask[order]
    np.add.at(out.T, group, selected.T)
    return out


def weighted_auc(truth: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC AUC (ties count one half) under each row of weights: the Mann-Whitney statistic."""
    pos = np.asarray(truth).astype(bool)
    score = np.asarray(score, dtype=float)
    order, group = _tie_groups(score, descending=False)
    neg_g, pos_g = _per_group(w, ~pos, order, group), _per_group(w, pos, order, group)
    below = np.cumsum(neg_g, axis=1) - neg_g
    with np.errstate(divide="ignore", invalid="ignore"):
        return (pos_g * (below + 0.5 * neg_g)).sum(1) / (pos_g.sum(1) * neg_g.sum(1))


def weighted_ap(truth: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision as scikit-learn defines it (precision at each threshold, weighted by the
    recall it adds) under each row of weights."""
    pos = np.asarray(truth).astype(bool)
    order, group = _tie_groups(np.asarray(score, dtype=float), descending=True)
    pos_g, neg_g = _per_group(w, pos, order, group), _per_group(w, ~pos, order, group)
    tp, fp = np.cumsum(pos_g, axis=1), np.cumsum(neg_g, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        return (pos_g * precision).sum(1) / pos_g.sum(1)


def _one_vs_rest(y: np.ndarray, probs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(truth, score) per class whose curves make the ranking AUCs: pneumonia for two classes,
    every class one-vs-rest for three (their mean is the macro AUC scikit-learn reports)."""
    if probs.shape[1] == 2:
        return [(y == 1, probs[:, 1])]
    return [(y == k, probs[:, k]) for k in range(probs.shape[1])]


def curve_metrics(y: np.ndarray, probs: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """``roc_auc`` and ``pr_auc`` (macro over classes for three) under each row of weights."""
    pairs = _one_vs_rest(np.asarray(y), probs)
    return {
        "roc_auc": np.mean([weighted_auc(t, s, w) for t, s in pairs], axis=0),
        "pr_auc": np.mean([weighted_ap(t, s, w) for t, s in pairs], axis=0),
    }


def curve_points(
    truth: np.ndarray, score: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every point of the ROC / PR curve under each row of weights: the distinct scores from high
    to low (G,), and the weighted true and false positives (R, G + 1) when deciding positive at
    ``score >= cut``; column 0 is the cut above every score (nothing called positive)."""
    pos = np.asarray(truth).astype(bool)
    score = np.asarray(score, dtype=float)
    order, group = _tie_groups(score, descending=True)
    cuts = score[order][np.flatnonzero(np.r_[True, group[1:] != group[:-1]])]
    pos_g, neg_g = _per_group(w, pos, order, group), _per_group(w, ~pos, order, group)
    zeros = np.zeros((w.shape[0], 1))
    tp = np.concatenate([zeros, np.cumsum(pos_g, axis=1)], axis=1)
    fp = np.concatenate([zeros, np.cumsum(neg_g, axis=1)], axis=1)
    return cuts, tp, fp


def curve_reads(
    truth: np.ndarray, score: np.ndarray, w: np.ndarray, sensitivity: float, specificity: float
) -> dict[str, np.ndarray]:
    """Numbers read off the test curves themselves, no threshold carried over from validation,
    under each row of weights. The reading rule, one for all: among the curve's points (one per
    distinct score, no interpolation) that meet the target, the best value.

    - ``roc_sens_at_spec``: the best sensitivity among ROC points with specificity >= target;
    - ``roc_spec_at_sens``: the best specificity among ROC points with sensitivity >= target;
    - ``pr_precision_at_sens``: the best precision among PR points with recall >= target;
    - ``pr_best_f1``: the best F1 on the PR curve (the curve's best, not a deployable number:
      its threshold is chosen on test).
    """
    _, tp, fp = curve_points(truth, score, w)
    positives, negatives = tp[:, -1:], fp[:, -1:]
    eps = 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        sens = tp / positives
        spec = 1 - fp / negatives
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        f1 = 2 * tp / (tp + fp + positives)

    def best(values: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        out = np.where(allowed, values, -np.inf).max(axis=1)
        return np.where(np.isfinite(out), out, np.nan)

    return {
        "roc_sens_at_spec": best(sens, spec >= specificity - eps),
        "roc_spec_at_sens": best(spec, sens >= sensitivity - eps),
        "pr_precision_at_sens": best(precision, sens >= sensitivity - eps),
        "pr_best_f1": best(f1, np.isfinite(f1)),
    }
