"""The leaderboard's verdict cannot be won by over-calling, and its uncertainty counts patients."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pneumobench.benchmark.operating_points import RANKED, choose_thresholds, ranked_metric
from pneumobench.benchmark.statistics import bootstrap_intervals, paired_comparison


def _scores(rng: np.random.Generator, y: np.ndarray, skill: float) -> np.ndarray:
    logit = rng.normal(0, 1, len(y)) + skill * (2 * y - 1)
    return 1 / (1 + np.exp(-logit))


def _two_class(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], 1)


def _ranked(metric: str, y_val, p_val, y_test, p_test) -> float:
    thresholds = choose_thresholds(y_val, p_val, sensitivity=0.95, specificity=0.90)
    return float(ranked_metric(metric, y_test, p_test, thresholds, np.ones((1, len(y_test))))[0])


def test_a_constant_or_random_model_is_never_champion_by_any_metric() -> None:
    rng = np.random.default_rng(0)
    y_val, y_test = (rng.random(300) < 0.62).astype(int), (rng.random(600) < 0.62).astype(int)
    good = (_two_class(_scores(rng, y_val, 1.5)), _two_class(_scores(rng, y_test, 1.5)))
    always_sick = (_two_class(np.full(300, 0.99)), _two_class(np.full(600, 0.99)))
    random = (_two_class(rng.random(300)), _two_class(rng.random(600)))
    for metric in RANKED:
        best = _ranked(metric, y_val, good[0], y_test, good[1])
        for other in (always_sick, random):
            assert _ranked(metric, y_val, other[0], y_test, other[1]) < best, metric
    # at argmax the over-caller would have won by recall: what the old leaderboard ranked
    assert (always_sick[1].argmax(1)[y_test == 1] == 1).mean() == 1.0


def test_a_model_whose_roc_curve_dominates_is_not_ranked_below_by_recall() -> None:
    rng = np.random.default_rng(1)
    y_val, y_test = (rng.random(400) < 0.6).astype(int), (rng.random(800) < 0.6).astype(int)
    logit_val, logit_test = rng.normal(0, 1.5, 400), rng.normal(0, 1.5, 800)
    weak = [
        1 / (1 + np.exp(-(z + 0.8 * (2 * y - 1))))
        for z, y in ((logit_val, y_val), (logit_test, y_test))
    ]
    # the same scores with every positive moved up: its ROC curve lies above the weak one's
    strong = [
        1 / (1 + np.exp(-(z + 0.8 * (2 * y - 1) + 1.0 * y)))
        for z, y in ((logit_val, y_val), (logit_test, y_test))
    ]
    recall = [
        _ranked("recall", y_val, _two_class(v), y_test, _two_class(t)) for v, t in (weak, strong)
    ]
    assert recall[1] >= recall[0]


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
    cmp = paired_comparison(y, [(a, {})], [(b, {})], "roc_auc", n_resamples=500, seed=0)
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
    clustered = bootstrap_intervals(y, probs, n_resamples=1000, seed=0, groups=patients)
    images = bootstrap_intervals(y, probs, n_resamples=1000, seed=0)
    for key in ("roc_auc", "recall", "accuracy"):
        assert clustered[key][1] - clustered[key][0] > 1.3 * (images[key][1] - images[key][0])
    singletons = [f"image{i}" for i in range(len(y))]
    assert bootstrap_intervals(y, probs, n_resamples=300, seed=0, groups=singletons) == (
        bootstrap_intervals(y, probs, n_resamples=300, seed=0)
    )
