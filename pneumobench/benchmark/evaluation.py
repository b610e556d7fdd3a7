"""The one look at the test set per final model: metrics, figures, predictions, the model itself."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pneumobench.benchmark.metrics import classification_metrics
from pneumobench.benchmark.training import predict
from pneumobench.data import PreparedData
from pneumobench.data.batches import BatchFeeder


@dataclass
class TestResult:
    metrics: dict[str, float]  # names without the test_ prefix
    probs: np.ndarray
    y_true: np.ndarray

    def predictions_csv(self, keys: list[str], class_names: tuple[str, ...]) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["path", "y_true", "y_pred", *[f"p_{c}" for c in class_names]])
        y_pred = self.probs.argmax(1)
        for key, t, p, row in zip(keys, self.y_true, y_pred, self.probs, strict=True):
            writer.writerow([key, int(t), int(p), *[f"{v:.6f}" for v in row]])
        return out.getvalue()


def evaluate_test(
    model: nn.Module, data: PreparedData, device: torch.device, batch_size: int
) -> TestResult:
    feeder = BatchFeeder(data.test.images, data.test.labels, device)
    probs, _ = predict(model, feeder, batch_size, device)
    return TestResult(
        classification_metrics(data.test.labels, probs, data.class_names), probs, data.test.labels
    )


def figures(result: TestResult, class_names: tuple[str, ...], title: str) -> dict[str, object]:
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
    curves.tight_layout()
    plt.close("all")
    return {"plots/confusion_matrix.png": cm_fig, "plots/roc_pr.png": curves}
