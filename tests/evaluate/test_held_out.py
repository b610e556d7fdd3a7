"""Tests of pneumobench/evaluate/held_out.py: every number a final evaluation logs recomputes
from the logged predictions CSVs (test and validation) to 1e-9, both blocks and every interval."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np

from pneumobench.config.sections import EvaluationConfig
from pneumobench.evaluate.calibration import calibration_metrics
from pneumobench.evaluate.deployed import Resampled, deployed_intervals
from pneumobench.evaluate.metrics import classification_metrics
from pneumobench.evaluate.operating_points import choose_thresholds, metrics_at, read_curves
from pneumobench.evaluate.statistics import (
    bootstrap_intervals,
    cluster_weights,
    percentile_interval,
)
from pneumobench.tracking import schema as S
from pneumobench.tracking.reader import read_predictions


def _recomputed(client, run, evaluation: EvaluationConfig, seed: int) -> dict[str, float]:
    _, y, probs, patients = read_predictions(client, run.info.run_id)
    _, y_val, val_probs, val_patients = read_predictions(client, run.info.run_id, S.VAL_PREDICTIONS)
    t = evaluation.operating_points
    one = np.ones((1, len(y)))
    names = ("normal", "pneumonia")
    out = {f"test_{k}": v for k, v in classification_metrics(y, probs, names).items()}
    out.update({f"test_{k}": float(v[0]) for k, v in read_curves(y, probs, one, t).items()})
    thresholds = choose_thresholds(y_val, val_probs, t.sensitivity, t.specificity)
    out.update({S.threshold_name(p): v for p, v in thresholds.items()})
    out.update({f"test_{k}": float(v[0]) for k, v in metrics_at(y, probs, thresholds, one).items()})
    val_one = np.ones((1, len(y_val)))
    val_at = metrics_at(y_val, val_probs, thresholds, val_one)
    out.update({S.val_metric(k): float(v[0]) for k, v in val_at.items()})
    intervals = bootstrap_intervals(
        y,
        probs,
        n_resamples=evaluation.bootstrap_resamples,
        seed=seed,
        level=evaluation.ci_level,
        class_names=names,
        groups=patients,
    )
    w = cluster_weights(y, patients, evaluation.bootstrap_resamples, seed)
    for k, values in read_curves(y, probs, w, t).items():
        intervals[k] = percentile_interval(values, evaluation.ci_level)
    inclusive, spread = deployed_intervals(
        Resampled.of(y_val, val_probs, val_patients),
        Resampled.of(y, probs, patients),
        t,
        n_resamples=evaluation.bootstrap_resamples,
        seed=seed,
        level=evaluation.ci_level,
    )
    intervals.update(inclusive)
    for key, (low, high) in intervals.items():
        out.update(dict(zip(S.ci_names(f"test_{key}"), (low, high), strict=True)))
    for point, (low, high) in spread.items():
        out.update(dict(zip(S.ci_names(S.threshold_name(point)), (low, high), strict=True)))
    calibration = calibration_metrics(y, probs, np.vstack([one, w]), evaluation.calibration_bins)
    for key, series in calibration.items():  # independent checks: tests/evaluate/test_calibration
        out[f"test_{key}"] = float(series[0])
        low, high = percentile_interval(series[1:], evaluation.ci_level)
        out.update(dict(zip(S.ci_names(f"test_{key}"), (low, high), strict=True)))
    return out


def test_every_logged_number_recomputes_from_the_predictions_csvs(finished: Path) -> None:
    client = mlflow.MlflowClient(f"sqlite:///{finished / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], f"tags.`{S.ROLE}` = '{S.ROLE_MODEL}'")
    assert len(runs) == 2
    evaluation = EvaluationConfig(bootstrap_resamples=200)  # the tiny config's
    for run in runs:
        logged = run.data.metrics
        again = _recomputed(client, run, evaluation, seed=int(run.data.tags[S.SEED]))
        checked = 0
        for name, value in logged.items():
            if not name.startswith((S.TEST_PREFIX, S.VAL_AT_PREFIX, S.THRESHOLD_PREFIX)):
                continue
            if name == S.N_TEST_EVALUATIONS:
                continue
            assert name in again, f"{name} is logged but not recomputed"
            if math.isfinite(again[name]):
                assert abs(again[name] - value) <= 1e-9, (name, value, again[name])
                checked += 1
        assert checked > 100
