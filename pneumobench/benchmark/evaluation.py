"""The one look at the test set per final model: metrics, figures, predictions, the model itself."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from pneumobench.benchmark.metrics import binary_metrics, classification_metrics
from pneumobench.benchmark.statistics import (
    _binary_vectorized,
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


@dataclass
class HeldOutResult:
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
        threshold = threshold_for_recall(
            data.val.labels != 0, 1 - val_probs[:, 0], evaluation.target_recall
        )
        result.threshold = threshold
        result.val_op_recall = binary_metrics(data.val.labels != 0, 1 - val_probs[:, 0], threshold)[
            "recall"
        ]
        sick, p_sick = (y != 0).astype(int), 1 - probs[:, 0]
        result.operating_point = binary_metrics(sick, p_sick, threshold)
        resamples = stratified_resamples(sick, evaluation.bootstrap_resamples, seed)
        dist = _binary_vectorized(sick[resamples], p_sick[resamples], threshold)
        for key, values in dist.items():
            result.intervals[f"op_{key}"] = percentile_interval(values, evaluation.ci_level)
    return result


def metrics_to_log(result: HeldOutResult) -> dict[str, float]:
    """Every number of a final evaluation under its MLflow name (``test_recall_ci_low``, ...)."""
    out = {f"test_{k}": v for k, v in result.metrics.items()}
    if result.operating_point:
        out.update(
            {
                f"test_op_{k}": v
                for k, v in result.operating_point.items()
                if k not in ("roc_auc", "pr_auc")
            }
        )
        out["op_threshold"] = result.threshold
        out["val_op_recall"] = result.val_op_recall
    for key, (low, high) in result.intervals.items():
        out[f"test_{key}_ci_low"], out[f"test_{key}_ci_high"] = low, high
    out["test_ece"] = result.ece
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


def figures(result: HeldOutResult, class_names: tuple[str, ...], title: str) -> dict[str, object]:
    """Confusion matrix, and ROC + precision-recall curves (one-vs-rest per class if multiclass)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    y_pred = result.probs.argmax(1)
    cm_fig, ax = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(
        result.y_true,
        y_pred,
        labels=list(range(len(class_names))),
        display_labels=list(class_names),
        ax=ax,
        colorbar=False,
    )
    ax.set_title(f"{title}: test confusion matrix")
    cm_fig.tight_layout()

    curves, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    positives = range(1, len(class_names)) if len(class_names) == 2 else range(len(class_names))
    for k in positives:
        truth = (result.y_true == k).astype(int)
        RocCurveDisplay.from_predictions(truth, result.probs[:, k], name=class_names[k], ax=roc_ax)
        PrecisionRecallDisplay.from_predictions(
            truth, result.probs[:, k], name=class_names[k], ax=pr_ax
        )
    roc_ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    roc_ax.set_title(f"{title}: ROC (test)")
    pr_ax.set_title(f"{title}: precision-recall (test)")
    if result.threshold is not None and len(class_names) == 2:
        roc_ax.plot([], [], " ", label=f"val-chosen threshold {result.threshold:.3f}")
        spec = result.operating_point.get("specificity", math.nan)
        roc_ax.plot(
            1 - spec,
            result.operating_point.get("recall", math.nan),
            "r*",
            ms=12,
            label="operating point (test)",
        )
        roc_ax.legend(loc="lower right")
    curves.tight_layout()

    rel_fig, rel_ax = plt.subplots(figsize=(4.5, 4))
    rel_ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfectly calibrated")
    if result.reliability:
        conf, acc, _counts = zip(*result.reliability, strict=True)
        rel_ax.plot(conf, acc, "o-", label=f"model (ECE {result.ece:.3f})")
        for c, a, n in result.reliability:
            rel_ax.annotate(str(n), (c, a), fontsize=7, textcoords="offset points", xytext=(3, -8))
    rel_ax.set_xlabel("confidence (top class)")
    rel_ax.set_ylabel("accuracy")
    rel_ax.set_title(f"{title}: reliability (test)")
    rel_ax.legend(loc="upper left")
    rel_fig.tight_layout()
    plt.close("all")
    return {
        "plots/confusion_matrix.png": cm_fig,
        "plots/roc_pr.png": curves,
        "plots/reliability.png": rel_fig,
    }
