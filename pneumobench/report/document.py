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
from typing import Any

from pneumobench.config.sections import EvaluationConfig
from pneumobench.report import clinical, sections
from pneumobench.report import figures as F
from pneumobench.report.checklist import Facts, checklist_section
from pneumobench.report.external import external_sections
from pneumobench.report.figures import Figure, Section, Table
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
    external_names,
    legend,
    store_notes,
    table_cells,
)
from pneumobench.report.rows import LeaderboardRow
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
    sections: list[Section] = field(default_factory=list)  # clinical, external, checklist

    @property
    def n_figures(self) -> int:
        """Every figure, in the sections and after them."""
        inside = sum(isinstance(b, Figure) for s in self.sections for b in s.blocks)
        return len(self.figures) + inside


def build_report(
    experiment: str,
    tracking_uri: str,
    storage: str | None,
    metric: str,
    evaluation: EvaluationConfig,
    subgroups: Path | None = None,
) -> Report:
    """Read an experiment's final models (MLflow) and studies (Optuna ``storage``, optional),
    judged with ``evaluation`` as the leaderboard judges them (the experiment's config section);
    ``subgroups``: the config's ``data.subgroups`` CSV, resolved."""
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
    predictions = {
        row.model: clinical.Predictions(*reader.read_predictions(store, row.run_id))
        for row in evaluated
    }
    pairs = {label: (p.y, p.probs) for label, p in predictions.items()}
    class_names = sections.class_names(runs, pairs)
    if predictions:
        report.sections = _clinical_sections(
            store, evaluated, predictions, evaluation, class_names, subgroups, report.notes
        )
        report.sections.append(_checklist(report, rows, runs, tracking_uri))
        report.figures.append(F.roc_pr(pairs, class_names))
    report.figures.extend(F.saliency(store, evaluated, report.notes))
    curves = F.validation_curves(store, runs)
    if curves is not None:
        report.figures.append(curves)
    for label, run in runs.items():
        where = storage or sections.logged_storage(run, report.notes)
        if where:
            report.figures.extend(F.study_figures(label, run, where, report.notes))
    return report


def _clinical_sections(
    store: Any,
    evaluated: list[LeaderboardRow],
    predictions: dict[str, clinical.Predictions],
    evaluation: EvaluationConfig,
    class_names: list[str],
    subgroups: Path | None,
    notes: list[str],
) -> list[Section]:
    """Calibration, utility, subgroups, failures, the external test sets."""
    task = "binary" if len(class_names) == 2 else "multiclass"
    return [
        clinical.calibration_section(predictions, evaluated, evaluation),
        clinical.utility_section(predictions, evaluated, evaluation),
        clinical.subgroup_section(predictions, evaluated, evaluation, task, subgroups, notes),
        clinical.failure_section(store, evaluated, predictions, class_names),
        *external_sections(store, evaluated, predictions),
    ]


def _checklist(report: Report, rows: list[LeaderboardRow], runs: dict, uri: str) -> Section:
    shown = [
        block.cells
        for section in report.sections
        if section.title == "Subgroups"
        for block in section.blocks
        if isinstance(block, Table)
    ]
    groupings = list(dict.fromkeys(cells[0] for table in shown for cells in table))
    single = next((r for r in rows if r.evaluated and not r.is_ensemble), None)
    return checklist_section(
        Facts(
            rows=rows,
            data_rows=report.data_rows,
            leak_note=report.leak_note,
            environment=report.environment,
            looks=test_looks(uri, rows),
            external=external_names(rows),
            subgroups=groupings,
            first_run=runs.get(single.model) if single else None,
        )
    )


def log_to_mlflow(report: Report, paths: list[Path]) -> str:
    """Attach the report to the experiment's summary run (made once, reused); its run id."""
    from pneumobench.tracking.writer import attach_report

    return attach_report(report.tracking_uri, report.experiment, paths, report.models)
