"""Tests of pneumobench/evaluate/deployed.py and the two blocks of the verdict: a model that
over-calls on a shifted test set does not climb the ranking, and its deployed threshold is
flagged; threshold-inclusive intervals are honest about the threshold's own uncertainty."""

from __future__ import annotations

import numpy as np
import pytest

from pneumobench.config.sections import EvaluationConfig, OperatingPointsConfig
from pneumobench.evaluate import deployed as D
from pneumobench.evaluate.held_out import evaluate_probabilities, metrics_to_log
from pneumobench.evaluate.operating_points import (
    RANKED,
    choose_thresholds,
    metrics_at,
    ranked_metric,
    threshold_for_best,
    threshold_for_recall,
    threshold_for_specificity,
)
from pneumobench.evaluate.statistics import cluster_weights, percentile_interval
from pneumobench.report.render import deployed_status
from pneumobench.report.rows import LeaderboardRow, RowStatus
from pneumobench.tracking import schema as S

TARGETS = OperatingPointsConfig()


def _labels(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.random(n) < 0.62).astype(int)


def _scores(rng: np.random.Generator, y: np.ndarray, skill: float, shift: float = 0.0):
    logit = rng.normal(0, 1, len(y)) + skill * (2 * y - 1) + shift
    p = 1 / (1 + np.exp(-logit))
    return np.stack([1 - p, p], 1)


def _value(metric: str, y, probs, thresholds) -> float:
    one = np.ones((1, len(y)))
    return float(ranked_metric(metric, y, probs, thresholds, one, TARGETS)[0])


def test_weighted_threshold_rules_equal_the_plain_ones_on_repeated_images() -> None:
    rng = np.random.default_rng(0)
    y = _labels(rng, 300)
    score = np.round(_scores(rng, y, 1.0)[:, 1], 2)  # ties
    sick = y.astype(bool)
    drawn = rng.integers(0, 300, 300)
    w = np.vstack([np.ones(300), np.bincount(drawn, minlength=300)])
    for row, (yy, ss) in enumerate(((y, score), (y[drawn], score[drawn]))):
        for target in (0.5, 0.9, 0.95, 1.0):
            assert D.threshold_for_specificity_w(sick, score, w, target)[row] == (
                threshold_for_specificity(yy, ss, target)
            )
            assert D.threshold_for_recall_w(sick, score, w, target)[row] == (
                threshold_for_recall(yy, ss, target)
            )
        for metric in ("f1", "accuracy"):
            assert D.threshold_for_best_w(sick, score, w, metric)[row] == (
                threshold_for_best(yy, ss, metric)
            )


def test_a_model_that_over_calls_on_test_only_does_not_climb_and_is_flagged() -> None:
    """Model B is as good as A on validation; on test its scores are shifted upward (a shift
    that moves every validation threshold) and slightly noisier. At the validation thresholds
    it would win recall (the old ranking); read off its own test curve it does not."""
    rng = np.random.default_rng(3)
    y_val, y_test = _labels(rng, 400), _labels(rng, 600)
    a_val, a_test = _scores(rng, y_val, 1.4), _scores(rng, y_test, 1.4)
    b_val = _scores(rng, y_val, 1.4)
    b_test = _scores(rng, y_test, 1.3, shift=1.5)  # over-calls on test only
    th_a = choose_thresholds(y_val, a_val, TARGETS.sensitivity, TARGETS.specificity)
    th_b = choose_thresholds(y_val, b_val, TARGETS.sensitivity, TARGETS.specificity)
    # the old ranking: recall at the validation-chosen specificity threshold: B wins by sliding
    assert _value("recall@spec", y_test, b_test, th_b) > _value("recall@spec", y_test, a_test, th_a)
    # the default ranking (block 1, read off the test curve): B does not rise above A
    for metric in ("recall", "roc_auc", "specificity", "f1", "pr_auc"):
        assert _value(metric, y_test, b_test, th_b) <= _value(metric, y_test, a_test, th_a), metric

    # B's deployed row says that its threshold did not hold on test
    class Data:  # the parts of PreparedData evaluate_probabilities reads
        has_patient_ids, class_names = False, ("normal", "pneumonia")

        class test:
            labels, patients = y_test, None

        class val:
            labels, patients = y_val, None

    evaluation = EvaluationConfig(bootstrap_resamples=300)
    for probs, val_probs, expected in ((b_test, b_val, "below"), (a_test, a_val, "held")):
        result = evaluate_probabilities(probs, val_probs, Data, evaluation, seed=0)  # type: ignore[arg-type]
        row = LeaderboardRow(model="m", status=RowStatus.EVALUATED, run_id="r")
        row.metrics = metrics_to_log(result)
        assert deployed_status(row, TARGETS) == expected


def test_a_dominating_roc_curve_ranks_first_by_every_discrimination_metric() -> None:
    rng = np.random.default_rng(1)
    y = _labels(rng, 800)
    z = rng.normal(0, 1.5, 800)
    weak = 1 / (1 + np.exp(-(z + 0.8 * (2 * y - 1))))
    strong = 1 / (1 + np.exp(-(z + 0.8 * (2 * y - 1) + 1.0 * y)))  # every positive moved up
    for metric in S.DISCRIMINATION:
        w_value = _value(metric, y, np.stack([1 - weak, weak], 1), {})
        s_value = _value(metric, y, np.stack([1 - strong, strong], 1), {})
        assert s_value >= w_value, metric
    assert all(RANKED[m][0] is None for m in S.DISCRIMINATION)


def _test_only_width(y_test, probs, threshold: float, n: int) -> float:
    w = cluster_weights(y_test, None, n, 0)
    values = metrics_at(y_test, probs, {"spec": threshold}, w)["at_spec_specificity"]
    low, high = percentile_interval(values, 0.95)
    return high - low


def test_threshold_inclusive_intervals_are_wider_and_shrink_as_validation_grows() -> None:
    rng = np.random.default_rng(5)
    y_test = _labels(rng, 600)
    p_test = _scores(rng, y_test, 1.2)
    widths = {}
    for n_val in (80, 4000):
        y_val = _labels(rng, n_val)
        p_val = _scores(rng, y_val, 1.2)
        intervals, spread = D.deployed_intervals(
            D.Resampled.of(y_val, p_val, None),
            D.Resampled.of(y_test, p_test, None),
            TARGETS,
            n_resamples=800,
            seed=0,
            level=0.95,
        )
        low, high = intervals["at_spec_specificity"]
        threshold = choose_thresholds(y_val, p_val, 0.95, 0.90)["spec"]
        widths[n_val] = (high - low, _test_only_width(y_test, p_test, threshold, 800))
        assert spread["spec"][0] <= threshold <= spread["spec"][1]
    (small, small_test_only), (large, large_test_only) = widths[80], widths[4000]
    assert small > small_test_only * 1.3  # the threshold's own uncertainty counts
    assert large < small  # and shrinks as validation grows
    assert large == pytest.approx(large_test_only, rel=0.35)


def test_target_status_says_below_held_and_above() -> None:
    assert D.target_status("spec", 0.56, 0.68, TARGETS) == "below"
    assert D.target_status("spec", 0.85, 0.93, TARGETS) == "held"
    assert D.target_status("spec", 0.92, 0.97, TARGETS) == "above"
    assert D.target_status("f1", 0.1, 0.2, TARGETS) is None
