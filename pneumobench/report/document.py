"""``pneumobench report``: the whole comparison in one file to send to a colleague.

``build_report`` gathers it (text sections: ``sections``; figures: ``figures``); ``writers``
turns it into HTML or Markdown.

Everything is read back from MLflow (runs, metric histories, the logged test predictions) and the
Optuna storage (studies), so a report can be made at any time, from any machine that reaches both.
The HTML file embeds its figures and opens offline; the Markdown variant writes them beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pneumobench.config.sections import EvaluationConfig
from pneumobench.report import figures as F
from pneumobench.report import sections
from pneumobench.report.figures import Figure
from pneumobench.report.leaderboard import (
    leaderboard_metric,
    load_leaderboard,
    normalize_metric,
    targets_of,
    test_looks,
)
from pneumobench.report.render import (
    deployed_cells,
    deployed_legend,
    legend,
    store_notes,
    table_cells,
)
from pneumobench.tracking import reader
from pneumobench.tracking.store import client


@dataclass
class Report:
    """Everything a report shows, read back from MLflow and Optuna; written by ``write_report``."""

    experiment: str
    metric: str
    tracking_uri: str
    headers: list[str]
    cells: list[list[str]]
    legend: str
    deployed_headers: list[str]
    deployed_cells: list[list[str]]
    deployed_legend: str
    store_notes: list[str]
    data_rows: list[dict[str, str]]
    leak_note: str
    environment: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def build_report(
    experiment: str,
    tracking_uri: str,
    storage: str | None,
    metric: str,
    evaluation: EvaluationConfig,
) -> Report:
    """Read an experiment's final models (MLflow) and studies (Optuna ``storage``, optional),
    judged with ``evaluation`` as the leaderboard judges them (the experiment's config section)."""
    key = normalize_metric(metric)
    rows = load_leaderboard(experiment, metric, tracking_uri, evaluation)
    store = client(tracking_uri)
    headers, cells = table_cells(rows, key, wide=True)
    targets = targets_of(rows, evaluation.operating_points)
    d_headers, d_cells = deployed_cells(rows, targets, wide=True)
    evaluated = [r for r in rows if r.evaluated]
    runs = {r.model: store.get_run(r.run_id) for r in rows}
    report = Report(
        experiment=experiment,
        metric=f"{leaderboard_metric(key)} ({key})",
        tracking_uri=tracking_uri,
        headers=headers,
        cells=cells,
        legend=legend(key, rows),
        deployed_headers=d_headers,
        deployed_cells=d_cells,
        deployed_legend=deployed_legend(targets),
        store_notes=store_notes(rows, test_looks(tracking_uri, rows)),
        data_rows=sections.data_rows(runs),
        leak_note=sections.leak_note(runs),
        environment=sections.environment(runs),
        models=[r.model for r in rows],
    )
    predictions = {}
    for row in evaluated:
        _, y, probs, _ = reader.read_predictions(store, row.run_id)
        predictions[row.model] = (y, probs)
    class_names = sections.class_names(runs, predictions)
    if predictions:
        report.figures.append(F.roc_pr(predictions, class_names))
        report.figures.append(F.confusion_grid(predictions, class_names))
    report.figures.extend(F.saliency(store, evaluated, report.notes))
    curves = F.validation_curves(store, runs)
    if curves is not None:
        report.figures.append(curves)
    for label, run in runs.items():
        where = storage or sections.logged_storage(run, report.notes)
        if where:
            report.figures.extend(F.study_figures(label, run, where, report.notes))
    return report


def log_to_mlflow(report: Report, paths: list[Path]) -> str:
    """Attach the report to the experiment's summary run (made once, reused); its run id."""
    from pneumobench.tracking.writer import attach_report

    return attach_report(report.tracking_uri, report.experiment, paths, report.models)
