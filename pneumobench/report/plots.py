"""Every figure pneumobench draws: a final model's own plots (logged to its run) and the report's
side-by-side comparisons use the same functions, so a curve looks the same in both places."""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_curve,
)

from pneumobench.evaluate.metrics import decide_at, is_pneumonia, pneumonia_score
from pneumobench.tracking import schema as S

Curves = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (0/1 truth, score)


def png(fig: Any) -> bytes:
    """The figure as PNG bytes (and closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def roc_pr(
    curves: Curves, title: str, operating_point: tuple[float, float, float] | None = None
) -> Any:
    """ROC and precision-recall curves side by side, one line per entry of ``curves``.

    ``operating_point`` (threshold, recall, specificity) marks a chosen decision on the ROC.
    """
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.8))
    for name, (truth, score) in curves.items():
        fpr, tpr, _ = roc_curve(truth, score)
        roc_ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        precision, recall, _ = precision_recall_curve(truth, score)
        ap = average_precision_score(truth, score)
        pr_ax.step(recall, precision, where="post", lw=1.6, label=f"{name} (AP {ap:.3f})")
    if operating_point is not None:
        threshold, recall, specificity = operating_point
        roc_ax.plot(
            1 - specificity,
            recall,
            "r*",
            ms=12,
            label=f"operating point, threshold {threshold:.3f}",
        )
    roc_ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    roc_ax.set(xlabel="1 - specificity", ylabel="recall (sensitivity)", title=f"{title}: ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title=f"{title}: precision-recall")
    for ax, where in ((roc_ax, "lower right"), (pr_ax, "lower left")):
        ax.legend(loc=where, fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def confusion_grid(
    panels: dict[str, tuple[np.ndarray, np.ndarray]], class_names: list[str] | tuple[str, ...]
) -> Any:
    """One confusion matrix per entry of ``panels`` (title -> (y_true, y_pred)), up to 4 a row."""
    n = len(panels)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax, (title, (y_true, y_pred)) in zip(axes.flat, panels.items(), strict=False):
        ConfusionMatrixDisplay.from_predictions(
            y_true,
            y_pred,
            labels=list(range(len(class_names))),
            display_labels=list(class_names),
            ax=ax,
            colorbar=False,
        )
        ax.set_title(title, fontsize=10)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def reliability(models: dict[str, tuple[list[Any], float]], title: str) -> Any:
    """Reliability diagram of P(pneumonia): the observed pneumonia fraction against the mean
    predicted probability per bin, one line per model (``label -> (bins, ECE)``); with one
    model each bin's count is annotated."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfectly calibrated")
    for label, (bins, ece) in models.items():
        if not bins:
            continue
        ax.plot(
            [b.mean_score for b in bins],
            [b.observed for b in bins],
            "o-",
            ms=4,
            label=f"{label} (ECE {ece:.3f})",
        )
        if len(models) == 1:
            for b in bins:
                ax.annotate(
                    str(b.count),
                    (b.mean_score, b.observed),
                    fontsize=7,
                    textcoords="offset points",
                    xytext=(3, -8),
                )
    ax.set(
        xlabel="predicted P(pneumonia), bin mean",
        ylabel="observed fraction with pneumonia",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"{title}: reliability (test)",
    )
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return fig


def final_model_figures(result: Any, class_names: tuple[str, ...], label: str) -> dict[str, Any]:
    """A final model's plots, by artifact name: confusion matrix, ROC + PR, reliability.

    ``result`` is an ``evaluation.HeldOutResult``. Two classes: the pneumonia curve with the
    validation-chosen operating point; three: one-vs-rest per class.
    """
    y, probs = result.y_true, result.probs
    if len(class_names) == 2:
        curves: Curves = {class_names[1]: (is_pneumonia(y), pneumonia_score(probs))}
    else:
        curves = {name: ((y == k).astype(int), probs[:, k]) for k, name in enumerate(class_names)}
    deployed = S.DEPLOYED_POINT
    point = None
    if deployed in result.thresholds and len(class_names) == 2:
        op = result.operating
        point = (
            result.thresholds[deployed],
            op.get(S.point_metric(deployed, "recall"), math.nan),
            op.get(S.point_metric(deployed, "specificity"), math.nan),
        )
    decided = (
        decide_at(probs, result.thresholds[deployed])
        if deployed in result.thresholds
        else probs.argmax(1)
    )
    ece = result.metrics.get("ece", math.nan)
    figures = {
        "plots/confusion_matrix.png": confusion_grid(
            {f"{label}: test, deployed threshold": (y, decided)}, class_names
        ),
        "plots/roc_pr.png": roc_pr(curves, f"{label} (test)", point),
        "plots/reliability.png": reliability({label: (result.reliability, ece)}, label),
    }
    for fig in figures.values():  # closed figures still save: nothing stays in pyplot's registry
        plt.close(fig)
    return figures


def training_curves(series: dict[str, dict[str, Any]]) -> Any:
    """Per model, train and validation loss (left axis) and the objective (right axis) by epoch.

    ``series[label]`` holds ``train_loss``, ``val_loss`` and the objective's name as lists of
    (epoch, value), plus ``_objective`` (that name) and ``_trial`` (the trial number).
    """
    n = len(series)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.2 * rows), squeeze=False)
    for ax, (label, s) in zip(axes.flat, series.items(), strict=False):
        objective = s["_objective"]
        for name, style in ((S.TRAIN_LOSS, "-"), (S.VAL_LOSS, "--")):
            if s.get(name):
                steps, values = zip(*sorted(s[name]), strict=True)
                ax.plot(steps, values, style, label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{label} (trial {s['_trial']})", fontsize=10)
        if s.get(objective):
            twin = ax.twinx()
            steps, values = zip(*sorted(s[objective]), strict=True)
            twin.plot(steps, values, "g.-", label=objective)
            twin.set_ylabel(objective, color="g")
        ax.legend(fontsize=7, loc="upper right")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


CELLS = (("TP", True, True), ("FP", False, True), ("FN", True, False), ("TN", False, False))


def saliency_rows(panel: dict[str, Any], per_cell: int = 2) -> list[tuple[str, int]]:
    """(cell, panel position) of up to ``per_cell`` images per confusion cell of ``panel``'s
    model (true / false positives / negatives of pneumonia at its operating point)."""
    sick = np.asarray(panel["labels"]) != 0
    said = np.asarray(panel["decisions"]) != 0
    rows = []
    for cell, truth, decision in CELLS:
        hits = np.flatnonzero((sick == truth) & (said == decision))[:per_cell]
        rows += [(cell, int(i)) for i in hits]
    return rows


def saliency_figure(
    panels: dict[str, dict[str, Any]],
    reference: str,
    rows: list[tuple[str, int]] | None = None,
    title: str | None = None,
) -> Any:
    """Grad-CAM overlays, models side by side (columns) on the same test images (rows). Rows
    default to the reference model's confusion cells; each overlay is titled with that model's
    P(pneumonia) and a tick or cross for its decision."""
    import matplotlib.pyplot as plt

    from pneumobench.evaluate.overlay import overlay

    ref = panels[reference]
    rows = rows if rows is not None else saliency_rows(ref)
    labels = list(panels)
    fig, axes = plt.subplots(
        max(len(rows), 1),
        len(labels) + 1,
        figsize=(1.9 * (len(labels) + 1), 2.0 * max(len(rows), 1)),
        squeeze=False,
    )
    for r, (cell, i) in enumerate(rows):
        truth = "pneumonia" if ref["labels"][i] != 0 else "normal"
        axes[r, 0].imshow(ref["images"][i], cmap="gray", vmin=0, vmax=255)
        axes[r, 0].set_title(f"{cell}: {truth}", fontsize=8)
        for c, label in enumerate(labels, start=1):
            panel = panels[label]
            score = 1.0 - float(panel["probs"][i][0])
            right = (panel["decisions"][i] != 0) == (panel["labels"][i] != 0)
            axes[r, c].imshow(overlay(panel["images"][i], panel["cams"][i].astype(np.float32)))
            mark = "\u2713" if right else "\u2717"
            axes[r, c].set_title(f"{label}\nP={score:.2f} {mark}", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title or f"Grad-CAM, rows: {reference}'s confusion cells", fontsize=9)
    fig.tight_layout()
    return fig


def disagreement_rows(panels: dict[str, dict[str, Any]], n: int = 4) -> list[tuple[str, int]]:
    """The panel images on which the models' P(pneumonia) differ most (standard deviation)."""
    scores = np.array([1.0 - np.asarray(p["probs"], dtype=float)[:, 0] for p in panels.values()])
    spread = scores.std(axis=0)
    order = np.argsort(-spread, kind="stable")[:n]
    return [(f"sd {spread[i]:.2f}", int(i)) for i in order]
