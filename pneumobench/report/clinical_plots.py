"""The plots of the report's clinical sections: the decision curve, the subgroup forest plot,
the most confident errors with their Grad-CAM maps, and what moved on an external test set."""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from pneumobench.evaluate.subgroups import SubgroupRow
from pneumobench.evaluate.utility import DecisionCurve


def decision_curves(curves: dict[str, DecisionCurve], deployed: dict[str, float]) -> Any:
    """Net benefit of every model, treat-all and treat-none over the threshold probabilities;
    each model's deployed threshold marked on its own curve."""
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    first = next(iter(curves.values()))
    ax.plot(first.thresholds, first.treat_all, color="0.45", lw=1.2, ls="--", label="treat all")
    ax.plot(first.thresholds, first.treat_none, color="0.2", lw=1.0, label="treat none")
    for label, curve in curves.items():
        (line,) = ax.plot(curve.thresholds, curve.model, lw=1.4, label=label)
        t = deployed.get(label)
        if t is not None and curve.thresholds[0] <= t <= curve.thresholds[-1]:
            y = float(np.interp(t, curve.thresholds, curve.model))
            ax.plot([t], [y], "o", color=line.get_color(), ms=7, mec="black", mew=0.8)
    top = max(float(np.nanmax(c.model)) for c in curves.values())
    top = max(top, float(np.nanmax(first.treat_all)))
    ax.set_ylim(-0.05, top + 0.05)
    ax.set(
        xlabel="threshold probability (a false positive weighs pt / (1 - pt) true positives)",
        ylabel="net benefit",
        title="Decision curves, test set (dots: each model's deployed threshold)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def forest(rows: list[SubgroupRow], model: str) -> Any:
    """Sensitivity, specificity and ROC AUC of each subgroup with their intervals (one panel per
    metric, one line per group)."""
    metrics = ("sensitivity", "specificity", "roc_auc")
    labels = [f"{r.grouping}: {r.group} (n={r.images})" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 0.45 * len(rows) + 1.6), sharey=True, squeeze=False)
    y = np.arange(len(rows))[::-1]
    for ax, metric in zip(axes[0], metrics, strict=True):
        for yi, row in zip(y, rows, strict=True):
            value = row.values.get(metric, math.nan)
            if not math.isfinite(value):
                ax.text(0.5, yi, "n/a", ha="center", va="center", fontsize=7, color="0.5")
                continue
            low, high = row.intervals.get(metric, (math.nan, math.nan))
            ax.plot([low, high], [yi, yi], color="tab:blue", lw=1.5)
            ax.plot([value], [yi], "s", color="tab:blue", ms=5)
        ax.set_xlim(0, 1.02)
        ax.set_title(metric.replace("_", " "), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y, labels, fontsize=8)
    fig.suptitle(f"{model}: subgroups on test (95% intervals, patients resampled)", fontsize=10)
    fig.tight_layout()
    return fig


def failures(panel: dict[str, Any], model: str) -> Any:
    """Each most-confident error: the image, and its Grad-CAM overlay titled with the kind,
    P(pneumonia) and the file; a shared colour bar says what the colours mean."""
    from pneumobench.evaluate.overlay import overlay

    n = len(panel["rows"])
    cols = min(n, 4)
    blocks = math.ceil(n / cols)
    fig, axes = plt.subplots(
        2 * blocks, cols, figsize=(2.6 * cols + 0.8, 5.4 * blocks), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for k in range(n):
        r, c = 2 * (k // cols), k % cols
        score = 1.0 - float(panel["probs"][k][0])
        name = str(panel["keys"][k]).rsplit("/", 1)[-1]
        axes[r, c].imshow(panel["images"][k], cmap="gray", vmin=0, vmax=255)
        axes[r, c].set_title(f"{panel['kinds'][k]}\nP(pneumonia) {score:.3f}", fontsize=8)
        axes[r + 1, c].imshow(overlay(panel["images"][k], panel["cams"][k].astype(np.float32)))
        axes[r + 1, c].set_title(name[:28], fontsize=7)
    mappable = plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(0, 1))
    fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.5, label="Grad-CAM (evidence)")
    threshold = float(panel["threshold"]) if "threshold" in panel else math.nan
    fig.suptitle(
        f"{model}: most confident errors at the deployed threshold {threshold:.3f}", fontsize=10
    )
    return fig


def score_shift(scores: dict[str, tuple[np.ndarray, np.ndarray]], name: str) -> Any:
    """P(pneumonia) on the internal and the external test set, per model and class (violins)."""
    labels = list(scores)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(labels) + 2), 4.2))
    positions, data, colors = [], [], []
    for i, label in enumerate(labels):
        internal, external = scores[label]
        positions += [3 * i, 3 * i + 1]
        data += [internal, external]
        colors += ["tab:blue", "tab:orange"]
    parts = ax.violinplot(data, positions=positions, showmedians=True, widths=0.9)
    for body, color in zip(parts["bodies"], colors, strict=True):
        body.set_facecolor(color)
        body.set_alpha(0.55)
    ax.set_xticks([3 * i + 0.5 for i in range(len(labels))], labels, fontsize=8, rotation=15)
    ax.set(
        ylabel="P(pneumonia)", ylim=(0, 1), title=f"Scores: internal test (blue) vs {name} (orange)"
    )
    fig.tight_layout()
    return fig


def operating_shift(
    points: dict[str, tuple[tuple[float, float], tuple[float, float]]], name: str
) -> Any:
    """Each model's deployed operating point (1 - specificity, sensitivity) on the internal
    test set and on the external one, joined by an arrow."""
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    for label, ((fpr_i, tpr_i), (fpr_e, tpr_e)) in points.items():
        (dot,) = ax.plot([fpr_i], [tpr_i], "o", ms=6, label=label)
        ax.annotate(
            "",
            (fpr_e, tpr_e),
            (fpr_i, tpr_i),
            arrowprops={"arrowstyle": "->", "color": dot.get_color()},
        )
        ax.plot([fpr_e], [tpr_e], "s", ms=6, color=dot.get_color())
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="1 - specificity",
        ylabel="sensitivity",
        title=f"Deployed threshold: internal (o) -> {name} (s)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
