"""What one look at the test set yields for a final model (from its predictions): metrics with intervals, the validation-chosen
operating point, calibration (ECE, Brier, intercept, slope), and the predictions every number can be recomputed from."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from pneumobench import profile
from pneumobench.config.sections import EvaluationConfig
from pneumobench.data import PreparedData
from pneumobench.evaluate.calibration import ReliabilityBin, calibration_metrics, reliability_bins
from pneumobench.evaluate.deployed import Resampled, deployed_intervals
from pneumobench.evaluate.metrics import classification_metrics
from pneumobench.evaluate.operating_points import (
    choose_thresholds,
    metrics_at,
    read_curves,
    threshold_name,
)
from pneumobench.evaluate.statistics import (
    bootstrap_intervals,
    cluster_weights,
    percentile_interval,
)
from pneumobench.tracking import schema as S


@dataclass
class HeldOutResult:
    """A final model's test predictions and every number computed from them."""

    metrics: dict[str, float]  # argmax metrics, names without the test_ prefix
    probs: np.ndarray
    y_true: np.ndarray
    patients: list[str] | None  # the test images' patients (None: unknown, each its own)
    thresholds: dict[str, float] = field(default_factory=dict)  # chosen on validation
    operating: dict[str, float] = field(default_factory=dict)  # at_<point>_<metric> on test
    validation: dict[str, float] = field(default_factory=dict)  # the same on validation
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    reliability: list[ReliabilityBin] = field(default_factory=list)  # of P(pneumonia)
    val_probs: np.ndarray | None = None  # the validation predictions the thresholds come from
    threshold_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # by point

    def all_metrics(self) -> dict[str, float]:
        """Argmax and operating-point metrics together (names without the test_ prefix)."""
        return {**self.metrics, **self.operating}

    def predictions_csv(self, keys: list[str], class_names: tuple[str, ...]) -> str:
        """``path, patient, y_true, y_pred, p_<class>...``: one row per test image."""
        return predictions_csv(keys, self.patients or keys, self.y_true, self.probs, class_names)


def predictions_csv(
    keys: list[str],
    patients: list[str],
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: tuple[str, ...],
) -> str:
    """``path, patient, y_true, y_pred, p_<class>...``: one row per image (test or validation)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["path", "patient", "y_true", "y_pred", *[f"p_{c}" for c in class_names]])
    y_pred = probs.argmax(1)
    for key, patient, t, p, row in zip(keys, patients, y_true, y_pred, probs, strict=True):
        # full float precision: every logged number recomputes from this file exactly
        writer.writerow([key, patient, int(t), int(p), *[repr(float(v)) for v in row]])
    return out.getvalue()


def evaluate_probabilities(
    probs: np.ndarray,
    val_probs: np.ndarray,
    data: PreparedData,
    evaluation: EvaluationConfig,
    seed: int,
) -> HeldOutResult:
    """Every number of a final evaluation from test and validation class probabilities (one
    model's, or an ensemble's mean): block 1 read off the test curves, block 2 at thresholds
    chosen on validation, every interval over resampled patients (block 2's including the
    thresholds' own uncertainty)."""
    y = data.test.labels
    patients = list(data.test.patients) if data.has_patient_ids else None
    targets = evaluation.operating_points
    one = np.ones((1, len(y)))
    discrimination = classification_metrics(y, probs, data.class_names)
    curves = read_curves(y, probs, one, targets)
    discrimination.update({k: float(v[0]) for k, v in curves.items()})
    result = HeldOutResult(discrimination, probs, y, patients)
    result.val_probs = val_probs
    with profile.stage("bootstraps"):
        _resampled(result, data, evaluation, seed)
    return result


def _resampled(
    result: HeldOutResult, data: PreparedData, evaluation: EvaluationConfig, seed: int
) -> None:
    """The thresholds, their test numbers, and every interval (the patient bootstraps)."""
    y, probs, val_probs, patients = result.y_true, result.probs, result.val_probs, result.patients
    assert val_probs is not None
    targets = evaluation.operating_points
    one = np.ones((1, len(y)))
    result.intervals = bootstrap_intervals(
        y,
        probs,
        n_resamples=evaluation.bootstrap_resamples,
        seed=seed,
        level=evaluation.ci_level,
        class_names=data.class_names,
        groups=patients,
    )
    result.thresholds = choose_thresholds(
        data.val.labels, val_probs, targets.sensitivity, targets.specificity
    )
    result.operating = {
        k: float(v[0]) for k, v in metrics_at(y, probs, result.thresholds, one).items()
    }
    val_one = np.ones((1, len(data.val.labels)))
    result.validation = {
        k: float(v[0])
        for k, v in metrics_at(data.val.labels, val_probs, result.thresholds, val_one).items()
    }
    w = cluster_weights(y, patients, evaluation.bootstrap_resamples, seed)  # the same resamples
    for name, values in read_curves(y, probs, w, targets).items():
        result.intervals[name] = percentile_interval(values, evaluation.ci_level)
    val_patients = list(data.val.patients) if data.has_patient_ids else None
    inclusive, result.threshold_intervals = deployed_intervals(
        Resampled.of(data.val.labels, val_probs, val_patients),
        Resampled.of(y, probs, patients),
        targets,
        n_resamples=evaluation.bootstrap_resamples,
        seed=seed,
        level=evaluation.ci_level,
    )
    result.intervals.update(inclusive)
    calibration = calibration_metrics(y, probs, np.vstack([one, w]), evaluation.calibration_bins)
    for name, series in calibration.items():
        result.metrics[name] = float(series[0])
        result.intervals[name] = percentile_interval(series[1:], evaluation.ci_level)
    result.reliability = reliability_bins(y, probs, evaluation.calibration_bins)


def headline(result: HeldOutResult, evaluation: EvaluationConfig) -> str:
    """Both blocks in one console line: what the test curves say, and what the deployed
    threshold (chosen on validation) achieved on test, with its target where it did not hold."""
    from pneumobench.evaluate.deployed import target_status

    t = evaluation.operating_points
    m, ci, point = result.all_metrics(), result.intervals, S.DEPLOYED_POINT
    spec_key = S.point_metric(point, "specificity")
    low, high = ci.get(spec_key, (math.nan, math.nan))
    status = target_status(point, low, high, t)
    held = {
        "below": f" [bold red]target {t.specificity:g} did not hold on test[/]",
        "above": f" (above the target {t.specificity:g})",
    }.get(status or "", "")
    return (
        f"test curves: sensitivity {m['roc_sens_at_spec']:.3f} at specificity >= "
        f"{t.specificity:g}, ROC AUC {m['roc_auc']:.3f}; deployed threshold "
        f"{result.thresholds[point]:.3f} (chosen on validation): sensitivity "
        f"{m[S.point_metric(point, 'recall')]:.3f}, specificity {m[spec_key]:.3f} "
        f"[{low:.3f}, {high:.3f}]{held}"
    )


def metrics_to_log(result: HeldOutResult) -> dict[str, float]:
    """Every number of a final evaluation under its MLflow name (``test_at_spec_recall``,
    ``test_recall_ci_low``, ``threshold_spec``, ``val_at_spec_specificity``, ...)."""
    out = {S.test_metric(k): v for k, v in result.all_metrics().items()}
    out.update({threshold_name(p): t for p, t in result.thresholds.items()})
    out.update({S.val_metric(k): v for k, v in result.validation.items()})
    for key, (low, high) in result.intervals.items():
        low_name, high_name = S.ci_names(S.test_metric(key))
        out[low_name], out[high_name] = low, high
    for point, (low, high) in result.threshold_intervals.items():
        low_name, high_name = S.ci_names(threshold_name(point))
        out[low_name], out[high_name] = low, high
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


def validation_csv(result: HeldOutResult, data: PreparedData) -> str | None:
    """The validation predictions of a final evaluation as CSV (None if not kept)."""
    if result.val_probs is None:
        return None
    val = data.val
    return predictions_csv(
        val.keys, list(val.patients), val.labels, result.val_probs, data.class_names
    )
