"""Tests of pneumobench/evaluate/statistics.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.metrics import roc_auc_score

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.metrics import classification_metrics
from pneumobench.evaluate.statistics import (
    bootstrap_intervals,
    cluster_weights,
    delong_test,
    holm_adjust,
    mcnemar_exact,
    paired_comparison,
)

TARGETS = OperatingPointsConfig()


def _fake_predictions(seed: int, n: int = 300, skill: float = 1.5):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.6).astype(int)
    logit = rng.normal(0, 1, n) + skill * (2 * y - 1)
    p = 1 / (1 + np.exp(-logit))
    return y, np.stack([1 - p, p], 1)


def _delong_reference(y, s1, s2):
    """DeLong et al. (1988) straight from the paper's structural components, O(m * n)."""
    pos, neg = s1[y == 1], s1[y == 0]
    pos2, neg2 = s2[y == 1], s2[y == 0]

    def psi(x, z):
        return (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])

    v10 = np.stack([psi(pos, neg).mean(1), psi(pos2, neg2).mean(1)])
    v01 = np.stack([psi(pos, neg).mean(0), psi(pos2, neg2).mean(0)])
    aucs = v10.mean(1)
    cov = np.cov(v10) / len(pos) + np.cov(v01) / len(neg)
    z = (aucs[0] - aucs[1]) / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    return aucs, 2 * (1 - 0.5 * (1 + math.erf(abs(z) / math.sqrt(2))))


def _two_class(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], 1)


def test_mcnemar_exact_on_a_textbook_table() -> None:
    # b=1, c=9 discordant pairs: p = 2 * P(X <= 1 | n=10, 1/2) = 2 * 11 / 1024
    a = np.array([True] * 20 + [True] * 1 + [False] * 9 + [False] * 5)
    b = np.array([True] * 20 + [False] * 1 + [True] * 9 + [False] * 5)
    assert mcnemar_exact(a, b) == (1, 9, pytest.approx(22 / 1024))
    assert mcnemar_exact(a, a)[2] == 1.0


def test_delong_matches_the_papers_formula_and_sklearn_auc() -> None:
    y, p1 = _fake_predictions(1, skill=1.2)
    _, p2 = _fake_predictions(2, skill=0.8)
    s1 = np.round(p1[:, 1], 2)  # rounding creates ties, the hard case
    s2 = np.round(0.5 * s1 + 0.5 * p2[:, 1], 2)
    auc1, auc2, p = delong_test(y, s1, s2)
    (ref1, ref2), ref_p = _delong_reference(y, s1, s2)
    assert auc1 == pytest.approx(skm.roc_auc_score(y, s1)) == pytest.approx(ref1)
    assert auc2 == pytest.approx(ref2)
    assert p == pytest.approx(ref_p, rel=1e-9)
    assert delong_test(y, s1, s1)[2] == 1.0


def test_holm_adjustment() -> None:
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5]) == [0.5]


def test_resampling_weights_keep_class_counts_and_are_seeded() -> None:
    y = np.array([0] * 30 + [1] * 70)
    w = cluster_weights(y, None, 50, seed=3)
    assert w.shape == (50, 100)
    assert (w @ y == 70).all() and (w.sum(1) == 100).all()
    np.testing.assert_array_equal(w, cluster_weights(y, None, 50, seed=3))


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_data() -> None:
    y, probs = _fake_predictions(5, n=200)
    point = classification_metrics(y, probs, ("normal", "pneumonia"))
    ci = bootstrap_intervals(y, probs, n_resamples=2000, seed=0, level=0.95)
    for key in ("accuracy", "recall", "f1", "roc_auc", "pr_auc", "specificity", "precision"):
        low, high = ci[key]
        assert low <= point[key] <= high, key
    y_big, probs_big = _fake_predictions(5, n=2000)
    low_big, high_big = bootstrap_intervals(y_big, probs_big, n_resamples=500, seed=0, level=0.95)[
        "recall"
    ]
    assert high_big - low_big < ci["recall"][1] - ci["recall"][0]


def test_multiclass_intervals_use_class_names() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    probs = rng.dirichlet([1, 1, 1], 90)
    probs[np.arange(90), y] += 1
    probs /= probs.sum(1, keepdims=True)
    ci = bootstrap_intervals(
        y, probs, n_resamples=50, seed=0, level=0.95, class_names=("normal", "bacteria", "virus")
    )
    assert {"recall", "recall_virus", "binary_recall"} <= set(ci)


def test_paired_comparison_detects_a_clearly_worse_model() -> None:
    y, good = _fake_predictions(6, n=400, skill=2.0)
    rng = np.random.default_rng(7)
    p_bad = np.clip(good[:, 1] + rng.normal(0, 0.45, len(y)), 0, 1)
    bad = np.stack([1 - p_bad, p_bad], 1)
    cmp = paired_comparison(
        y,
        [(bad, {})],
        [(good, {})],
        "roc_auc",
        n_resamples=1000,
        seed=0,
        level=0.95,
        targets=TARGETS,
    )
    assert cmp.difference < 0 and cmp.diff_ci[1] < 0
    assert cmp.p_delong < 0.01 and cmp.p_bootstrap < 0.01
    same = paired_comparison(
        y,
        [(good, {"spec": 0.5})],
        [(good, {"spec": 0.5})],
        "recall",
        n_resamples=200,
        seed=0,
        level=0.95,
        targets=TARGETS,
    )
    assert same.difference == 0 and same.p_mcnemar == 1.0


def test_three_classes_difference_interval_p_value_and_group_are_about_the_macro_auc() -> None:
    """Model B separates bacteria from virus well but pneumonia from normal poorly; A the other
    way round: macro AUC and the collapsed AUC disagree. The comparison must follow the ranked
    (macro) quantity in all of difference, interval and p-value."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 900)
    noise = rng.normal(0, 1, (900, 3))

    def probs(sick_skill: float, subtype_skill: float) -> np.ndarray:
        logits = noise.copy()
        logits[:, 0] += sick_skill * (y == 0)
        logits[:, 1] += subtype_skill * (y == 1)
        logits[:, 2] += subtype_skill * (y == 2)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)

    a, b = probs(3.0, 0.3), probs(0.6, 3.0)
    macro = [roc_auc_score(y, p, multi_class="ovr") for p in (a, b)]
    collapsed = [roc_auc_score(y != 0, 1 - p[:, 0]) for p in (a, b)]
    assert np.sign(macro[0] - macro[1]) != np.sign(collapsed[0] - collapsed[1])  # they disagree
    cmp = paired_comparison(
        y, [(a, {})], [(b, {})], "roc_auc", n_resamples=500, seed=0, level=0.95, targets=TARGETS
    )
    assert cmp.difference == pytest.approx(macro[0] - macro[1])
    low, high = cmp.diff_ci
    assert low <= cmp.difference <= high
    assert (high < 0 or low > 0) == (cmp.p_bootstrap < 0.05)


def test_patient_clustered_intervals_are_wider_on_clustered_data_and_equal_without_clusters() -> (
    None
):
    rng = np.random.default_rng(3)
    n_patients, per_patient = 120, 5
    y_patient = (rng.random(n_patients) < 0.6).astype(int)
    skill_patient = rng.normal(0, 1.2, n_patients)  # a patient's images look alike
    y = np.repeat(y_patient, per_patient)
    logit = np.repeat(skill_patient + 1.2 * (2 * y_patient - 1), per_patient)
    p = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.3, len(y)))))
    probs = _two_class(p)
    patients = [f"p{i // per_patient}" for i in range(len(y))]
    clustered = bootstrap_intervals(y, probs, n_resamples=1000, seed=0, level=0.95, groups=patients)
    images = bootstrap_intervals(y, probs, n_resamples=1000, seed=0, level=0.95)
    for key in ("roc_auc", "recall", "accuracy"):
        assert clustered[key][1] - clustered[key][0] > 1.3 * (images[key][1] - images[key][0])
    singletons = [f"image{i}" for i in range(len(y))]
    assert bootstrap_intervals(
        y, probs, n_resamples=300, seed=0, level=0.95, groups=singletons
    ) == (bootstrap_intervals(y, probs, n_resamples=300, seed=0, level=0.95))
