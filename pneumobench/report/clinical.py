"""The report's clinical sections, recomputed from each final model's logged test predictions:
calibration, clinical utility (decision curves), subgroups, and failure analysis.

Every interval resamples test patients with the row's seed and the experiment's resamples, as
the final evaluation did, so the calibration numbers equal the logged ``test_ece``,
``test_brier``, ``test_calibration_intercept`` / ``_slope`` (and their ``_ci_low`` / ``_ci_high``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pneumobench.config.sections import EvaluationConfig
from pneumobench.data.subgroups import read_subgroups
from pneumobench.evaluate.calibration import calibration_metrics, reliability_bins
from pneumobench.evaluate.metrics import is_pneumonia, pneumonia_score
from pneumobench.evaluate.statistics import cluster_weights, percentile_interval
from pneumobench.evaluate.subgroups import SubgroupRow, derived_groupings, subgroup_rows
from pneumobench.evaluate.utility import decision_curve, net_benefit, threshold_grid
from pneumobench.report import clinical_plots, plots
from pneumobench.report.figures import Figure, Section, Table
from pneumobench.report.rows import LeaderboardRow
from pneumobench.tracking import reader
from pneumobench.tracking import schema as S


@dataclass
class Predictions:
    """One final model's logged test predictions."""

    keys: list[str]
    y: np.ndarray
    probs: np.ndarray
    patients: list[str] | None


def with_interval(value: float, interval: tuple[float, float], digits: int = 3) -> str:
    """``0.123 [0.100, 0.150]``; ``n/a`` for an undefined value."""
    if not math.isfinite(value):
        return "n/a"
    low, high = interval
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def deployed_thresholds(rows: list[LeaderboardRow]) -> dict[str, float]:
    """Each row's deployed threshold on P(pneumonia), chosen on validation."""
    name = S.threshold_name(S.DEPLOYED_POINT)
    return {r.model: float(r.all_metrics[name]) for r in rows if name in r.all_metrics}


def calibration_section(
    predictions: dict[str, Predictions],
    rows: list[LeaderboardRow],
    evaluation: EvaluationConfig,
) -> Section:
    """ECE, Brier, intercept and slope with intervals, and one reliability diagram."""
    seeds = {r.model: int(r.seed or 0) for r in rows}
    cells, lines = [], {}
    for label, p in predictions.items():
        w = cluster_weights(p.y, p.patients, evaluation.bootstrap_resamples, seeds.get(label, 0))
        series = calibration_metrics(
            p.y, p.probs, np.vstack([np.ones((1, len(p.y))), w]), evaluation.calibration_bins
        )
        shown = {
            k: with_interval(float(v[0]), percentile_interval(v[1:], evaluation.ci_level))
            for k, v in series.items()
        }
        cells.append(
            [
                label,
                shown["ece"],
                shown["brier"],
                shown["calibration_intercept"],
                shown["calibration_slope"],
            ]
        )
        lines[label] = (
            reliability_bins(p.y, p.probs, evaluation.calibration_bins),
            float(series["ece"][0]),
        )
    table = Table(
        "Calibration of P(pneumonia) on test",
        ["model", "ECE", "Brier", "calibration intercept", "calibration slope"],
        cells,
        f"ECE: {evaluation.calibration_bins} equal-width bins. Intercept (calibration-in-the-large) "
        "0 and slope 1 are perfect; intercept < 0: risks too high on average; slope < 1: risks too "
        "extreme (over-confident). Logistic recalibration of the score's logit; "
        f"{evaluation.ci_level:.0%} intervals, test patients resampled.",
    )
    figure = Figure(
        "reliability",
        "Reliability diagram, all models",
        plots.png(plots.reliability(lines, "all models")),
        "Points: bins of predicted P(pneumonia); on the diagonal a model's risks are right.",
    )
    return Section(
        "Calibration",
        "Whether P(pneumonia) can be read as a probability on the test population.",
        [table, figure],
    )


def utility_section(
    predictions: dict[str, Predictions], rows: list[LeaderboardRow], evaluation: EvaluationConfig
) -> Section:
    """Decision curves of every model in one figure, deployed thresholds marked."""
    grid = threshold_grid(*evaluation.decision_curve)
    curves = {label: decision_curve(p.y, p.probs, grid) for label, p in predictions.items()}
    thresholds = deployed_thresholds(rows)
    cells = []
    for label, curve in curves.items():
        t = thresholds.get(label)
        above = curve.model > np.maximum(curve.treat_all, curve.treat_none) + 1e-12
        useful = grid[above]
        span = f"{useful.min():.2f} to {useful.max():.2f}" if len(useful) else "nowhere"
        p = predictions[label]
        at_t = (
            float(net_benefit(is_pneumonia(p.y), pneumonia_score(p.probs), np.array([t]))[0])
            if t is not None and 0 < t < 1
            else math.nan
        )
        cells.append([label, f"{t:.3f}" if t is not None else "n/a", _num(at_t), span])
    low, high = evaluation.decision_curve
    return Section(
        "Clinical utility",
        "Net benefit (Vickers & Elkin): true positives minus false positives weighed by the "
        "threshold odds, per patient, against treating everybody or nobody.",
        [
            Figure(
                "decision_curve",
                "Decision curves, all models",
                plots.png(clinical_plots.decision_curves(curves, thresholds)),
                f"Threshold probabilities {low:g} to {high:g}. Test prevalence "
                f"{float(np.mean(next(iter(predictions.values())).y != 0)):.3f}; net benefit "
                "depends on it, so it carries over only to a population with the same prevalence.",
            ),
            Table(
                "Net benefit at the deployed thresholds",
                ["model", "deployed threshold", "net benefit there", "above both defaults for pt"],
                cells,
                "The deployed threshold is a score, not a stated preference: it corresponds to "
                "a threshold probability only where the model is calibrated (see Calibration).",
            ),
        ],
    )


def _num(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


SUBGROUP_HEADERS = [
    "grouping",
    "group",
    "source",
    "images",
    "patients",
    "pneumonia",
    "normal",
    "sensitivity",
    "specificity",
    "ROC AUC",
]


def subgroup_section(
    predictions: dict[str, Predictions],
    rows: list[LeaderboardRow],
    evaluation: EvaluationConfig,
    task: str,
    subgroups_csv: Path | None,
    notes: list[str],
) -> Section:
    """Every evaluated model's subgroup table; a forest plot for the top row."""
    thresholds = deployed_thresholds(rows)
    seeds = {r.model: int(r.seed or 0) for r in rows}
    first = next(iter(predictions.values()))
    groupings, intro = _groupings(first, task, subgroups_csv, notes)
    if not groupings:
        return Section(
            "Subgroups",
            intro + " These test images carry no groups by themselves (no file names to read).",
        )
    blocks: list[Figure | Table] = []
    for label, p in predictions.items():
        if label not in thresholds:
            continue
        table_rows: list[SubgroupRow] = []
        for name, (groups, source) in groupings.items():
            table_rows += subgroup_rows(
                name,
                groups,
                source,
                y=p.y,
                probs=p.probs,
                threshold=thresholds[label],
                patients=p.patients,
                n_resamples=evaluation.bootstrap_resamples,
                seed=seeds.get(label, 0),
                level=evaluation.ci_level,
            )
        if not blocks:
            forest = clinical_plots.forest(table_rows, label)
            blocks.append(
                Figure("subgroups_forest", f"Subgroups of {label} (top row)", plots.png(forest))
            )
        cells = [_subgroup_cells(r) for r in table_rows]
        blocks.append(Table(f"{label}: subgroups on test", SUBGROUP_HEADERS, cells))
    sizes = (
        "Strata of the originals' size or aspect: not available, the source keeps the "
        "images resized (its README), so the originals' dimensions are unknown here."
    )
    return Section("Subgroups", f"{intro} {sizes}", blocks)


def _groupings(
    first: Predictions, task: str, subgroups_csv: Path | None, notes: list[str]
) -> tuple[dict[str, tuple[list[str | None], str]], str]:
    """The file names' groupings and the user's, with where each comes from; the intro."""
    derived = derived_groupings(first.keys, first.y, task)
    groupings = {k: (v, "file names") for k, v in derived.items()}
    intro = (
        "Sensitivity and specificity at the deployed threshold and ROC AUC per group. Where a "
        "grouping labels one side only (pathogen: pneumonia images; file family: normal ones), "
        "every image of the other side is each group's reference."
    )
    if subgroups_csv is None:
        return groupings, intro + (
            " Add your own groups (age band, sex, site, device) with data.subgroups: a CSV "
            "of path (or id) and group columns."
        )
    file = read_subgroups(subgroups_csv)
    user, unnamed = file.groupings(first.keys)
    groupings.update({k: (v, file.path.name) for k, v in user.items()})
    if unnamed:
        notes.append(f"{file.path.name}: {unnamed} test image(s) are not in the file")
    return groupings, intro


def _subgroup_cells(r: SubgroupRow) -> list[str]:
    counts = [str(n) for n in (r.images, r.patients, r.positives, r.negatives)]
    values = [
        with_interval(r.values.get(m, math.nan), r.intervals.get(m, (math.nan, math.nan)))
        for m in ("sensitivity", "specificity", "roc_auc")
    ]
    return [r.grouping, r.group, r.source, *counts, *values]


def failure_section(
    store: Any,
    rows: list[LeaderboardRow],
    predictions: dict[str, Predictions],
    class_names: list[str],
) -> Section:
    """Confusion matrices at the deployed thresholds; the top single model's most confident
    errors with their Grad-CAM maps."""
    from pneumobench.report.figures import confusion_grid

    thresholds = deployed_thresholds(rows)
    blocks: list[Figure | Table] = [
        confusion_grid(
            {label: (p.y, p.probs) for label, p in predictions.items()}, class_names, thresholds
        )
    ]
    for row in rows:
        if row.is_ensemble or not row.evaluated:
            continue
        panel = reader.read_saliency_panel(store, row.run_id, S.FAILURE_PANEL)
        if panel is None:
            continue
        blocks.append(
            Figure(
                "failures",
                f"{row.model}: the most confident false negatives and false positives",
                plots.png(clinical_plots.failures(panel, row.model)),
                "Top: the test image and P(pneumonia); bottom: Grad-CAM of the decision made "
                "(red: the most evidence for it). False negatives first: pneumonia the model was "
                "surest was normal.",
            )
        )
        break
    return Section(
        "Failure analysis", "What the models get wrong at their deployed operating points.", blocks
    )
