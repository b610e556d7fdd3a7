"""The one look at the test set per final model: metrics with intervals, the validation-chosen
operating point, calibration, and the predictions every number can be recomputed from."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pneumobench.benchmark.metrics import (
    binary_metrics,
    classification_metrics,
    is_pneumonia,
    pneumonia_score,
)
from pneumobench.benchmark.statistics import (
    binary_vectorized,
    bootstrap_intervals,
    expected_calibration_error,
    percentile_interval,
    stratified_resamples,
    threshold_for_recall,
)
from pneumobench.benchmark.training import predict
from pneumobench.config import EvaluationConfig
from pneumobench.data import PreparedData
from pneumobench.data.batches import BatchFeeder
from pneumobench.tracking import schema as S


@dataclass
class HeldOutResult:
    """A final model's test predictions and every number computed from them."""

    metrics: dict[str, float]  # names without the test_ prefix
    probs: np.ndarray
    y_true: np.ndarray
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    operating_point: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None
    val_op_recall: float | None = None
    ece: float = math.nan
    reliability: list[tuple[float, float, int]] = field(default_factory=list)

    def predictions_csv(self, keys: list[str], class_names: tuple[str, ...]) -> str:
        """``path, y_true, y_pred, p_<class>...``: one row per test image."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["path", "y_true", "y_pred", *[f"p_{c}" for c in class_names]])
        y_pred = self.probs.argmax(1)
        for key, t, p, row in zip(keys, self.y_true, y_pred, self.probs, strict=True):
            writer.writerow([key, int(t), int(p), *[f"{v:.6f}" for v in row]])
        return out.getvalue()


def evaluate_test(
    model: nn.Module,
    data: PreparedData,
    device: torch.device,
    batch_size: int,
    evaluation: EvaluationConfig | None = None,
    seed: int = 0,
) -> HeldOutResult:
    """The test set's one look at a final model, with the numbers that say how sure it is.

    The operating-point threshold is chosen on VALIDATION predictions, then applied unchanged.
    """
    evaluation = evaluation or EvaluationConfig()
    probs, _ = predict(model, BatchFeeder(data.test, device), batch_size, device)
    y = data.test.labels
    result = HeldOutResult(classification_metrics(y, probs, data.class_names), probs, y)
    result.intervals = bootstrap_intervals(
        y,
        probs,
        n_resamples=evaluation.bootstrap_resamples,
        seed=seed,
        level=evaluation.ci_level,
        class_names=data.class_names,
    )
    result.ece, result.reliability = expected_calibration_error(
        y, probs, evaluation.calibration_bins
    )
    if evaluation.target_recall is not None:
        val_probs, _ = predict(model, BatchFeeder(data.val, device), batch_size, device)
        val_sick, val_score = is_pneumonia(data.val.labels), pneumonia_score(val_probs)
        threshold = threshold_for_recall(val_sick, val_score, evaluation.target_recall)
        result.threshold = threshold
        result.val_op_recall = binary_metrics(val_sick, val_score, threshold)["recall"]
        sick, p_sick = is_pneumonia(y), pneumonia_score(probs)
        result.operating_point = binary_metrics(sick, p_sick, threshold)
        resamples = stratified_resamples(sick, evaluation.bootstrap_resamples, seed)
        dist = binary_vectorized(sick[resamples], p_sick[resamples], threshold)
        for key, values in dist.items():
            result.intervals[f"op_{key}"] = percentile_interval(values, evaluation.ci_level)
    return result


def metrics_to_log(result: HeldOutResult) -> dict[str, float]:
    """Every number of a final evaluation under its MLflow name (``test_recall_ci_low``, ...)."""
    out = {S.test_metric(k): v for k, v in result.metrics.items()}
    if result.operating_point:
        out.update(
            {
                S.test_metric(f"op_{k}"): v
                for k, v in result.operating_point.items()
                if k not in ("roc_auc", "pr_auc")
            }
        )
        out[S.OP_THRESHOLD] = result.threshold
        out[S.VAL_OP_RECALL] = result.val_op_recall
    for key, (low, high) in result.intervals.items():
        low_name, high_name = S.ci_names(S.test_metric(key))
        out[low_name], out[high_name] = low, high
    out[S.TEST_ECE] = result.ece
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}
