"""The report's external-test sections: per external set, both blocks beside the internal test
with each shift's interval, and how the score distributions and operating points moved."""

from __future__ import annotations

from typing import Any

import numpy as np

from pneumobench.evaluate.metrics import is_pneumonia, pneumonia_score
from pneumobench.report import clinical_plots, plots
from pneumobench.report.clinical import Predictions, deployed_thresholds
from pneumobench.report.figures import Figure, Section, Table
from pneumobench.report.render import external_cells, external_legend, external_names
from pneumobench.report.rows import LeaderboardRow
from pneumobench.tracking import reader
from pneumobench.tracking import schema as S


def external_sections(
    store: Any, rows: list[LeaderboardRow], internal: dict[str, Predictions]
) -> list[Section]:
    """One section per external set; a single section saying none was made otherwise."""
    names = external_names(rows)
    if not names:
        return [
            Section(
                "External test",
                "No external test set was evaluated: every number above comes from the internal "
                "test split (CLAIM 33). `pneumobench evaluate CONFIG --test-data FOLDER_OR_NPZ` "
                "runs every final model on a second set at its deployed thresholds.",
            )
        ]
    experiment_id = store.get_run(rows[0].run_id).info.experiment_id
    runs = reader.external_runs(store, experiment_id)
    thresholds = deployed_thresholds(rows)
    return [_section(store, name, rows, runs.get(name, {}), internal, thresholds) for name in names]


def _section(
    store: Any,
    name: str,
    rows: list[LeaderboardRow],
    runs: dict[str, Any],
    internal: dict[str, Predictions],
    thresholds: dict[str, float],
) -> Section:
    headers, cells = external_cells(rows, name, wide=True)
    scores, points = {}, {}
    labels = {r.run_id: r.model for r in rows}
    for model_run, run in runs.items():
        label = labels.get(model_run)
        if label is None or label not in internal:
            continue
        _, y, probs, _ = reader.read_predictions(store, run.info.run_id)
        inside = internal[label]
        scores[label] = (pneumonia_score(inside.probs), pneumonia_score(probs))
        t = thresholds.get(label)
        if t is not None:
            points[label] = (_point(inside.y, inside.probs, t), _point(y, probs, t))
    blocks: list[Figure | Table] = [
        Table(f"{name}: external vs internal test", headers, cells, external_legend(name))
    ]
    if scores:
        blocks.append(
            Figure(
                f"external_scores_{_slug(name)}",
                f"P(pneumonia) on the internal test and on {name}",
                plots.png(clinical_plots.score_shift(scores, name)),
                "A shift of the whole distribution moves every fixed threshold's "
                "sensitivity and specificity.",
            )
        )
    if points:
        blocks.append(
            Figure(
                f"external_points_{_slug(name)}",
                f"Deployed operating points moving to {name}",
                plots.png(clinical_plots.operating_shift(points, name)),
            )
        )
    first = next(iter(runs.values()), None)
    where = first.data.tags.get(S.EXTERNAL_PATH, "") if first is not None else ""
    return Section(
        f"External test: {name}",
        f"Read from {where}; decoded and resized as each model's training data.",
        blocks,
    )


def _point(y: np.ndarray, probs: np.ndarray, threshold: float) -> tuple[float, float]:
    sick, said = is_pneumonia(y).astype(bool), pneumonia_score(probs) >= threshold
    return float(said[~sick].mean()), float(said[sick].mean())


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
