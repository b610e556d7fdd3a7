"""``pneumobench evaluate --test-data``: every final model and ensemble of an experiment on an
external test set, once, at the thresholds each deploys.

Each model is rebuilt from its serving bundle (weights only, as ``predict`` does) and sees the
external images decoded at its own image size and resize rule. An ensemble averages its
members' probabilities, as it did on the internal test (and as its deployed bundle does; a
seed ensemble's seeds rebuilt from their own bundles). A row whose runs have no bundle (logged
before seed repeats kept their weights) is skipped, saying so. Each
evaluation is logged as a run nested under the model's run (``tracking.external.log_external_run``)
and counted as a look at the external set; the same model is not evaluated on the same set
twice unless forced (and a forced look is counted).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from pneumobench.config import ExperimentConfig
from pneumobench.data.external import ExternalSet, load_external
from pneumobench.errors import ModelError, TrackingError
from pneumobench.evaluate.external import SHOWN, ExternalResult, TestPredictions, compare_external
from pneumobench.evaluate.held_out import predictions_csv
from pneumobench.report.clinical_plots import operating_shift, score_shift
from pneumobench.report.leaderboard import load_leaderboard
from pneumobench.report.rows import LeaderboardRow
from pneumobench.tracking import reader
from pneumobench.tracking import schema as S
from pneumobench.tracking.external import log_external_run
from pneumobench.tracking.store import client, find_experiment


@dataclass
class ExternalOutcome:
    """What happened to one leaderboard row."""

    label: str
    result: ExternalResult | None = None
    skipped: str | None = None  # why not evaluated
    run_id: str | None = None


def evaluate_external(
    config: ExperimentConfig,
    tracking_uri: str,
    test_data: Path,
    name: str | None,
    console: Console,
    force: bool = False,
) -> tuple[ExternalSet, list[ExternalOutcome]]:
    """Evaluate every evaluated row of the experiment on ``test_data`` (module docstring)."""
    from pneumobench.registry.plugins import load_plugins
    from pneumobench.tracking.models import connect

    connect(tracking_uri)
    load_plugins(config.plugins, config.base_dir)
    store = client(tracking_uri)
    experiment = find_experiment(store, config.name, tracking_uri)
    rows = [
        r
        for r in load_leaderboard(
            config.name, "roc_auc", tracking_uri, config.evaluation, compare=False
        )
        if r.evaluated
    ]
    external = load_external(test_data, config.task, name)
    console.print(
        f"external test set [bold]{external.name}[/]: {len(external.records)} images from "
        f"{external.path} (digest {external.digest[:12]}); {len(rows)} final model(s)"
    )
    models: dict[str, tuple[Any, Any]] = {}
    outcomes = []
    for row in rows:
        outcome = _evaluate_row(
            store, experiment.experiment_id, row, external, config, models, force
        )
        outcomes.append(outcome)
        if outcome.result is not None:
            console.print(f"  [bold green]{row.model}[/]: {describe(outcome.result)}")
        else:
            console.print(f"  [yellow]{row.model}[/]: not evaluated: {outcome.skipped}")
    return external, outcomes


def describe(result: ExternalResult) -> str:
    """One line: the shown metrics, internal -> external (shift [interval])."""
    parts = []
    for key in SHOWN:
        low, high = result.shift_ci.get(key, (np.nan, np.nan))
        parts.append(
            f"{key} {result.internal[key]:.3f} -> {result.external[key]:.3f} "
            f"({result.shift[key]:+.3f} [{low:+.3f}, {high:+.3f}])"
        )
    return "; ".join(parts)


def _member_runs(store: Any, row: LeaderboardRow) -> list[tuple[str, float]]:
    """(run, weight) of every single model behind the row (the row's own run, or its
    ensemble's members flattened as the deployed ensemble is: ``deploy.flatten``)."""
    from pneumobench.benchmark.deploy import flatten

    return flatten(store, row.run_id)


def _probabilities(
    members: list[tuple[str, float]], external: ExternalSet, models: dict[str, tuple[Any, Any]]
) -> np.ndarray:
    """The row's probabilities on the external images: its members' weighted mean, each
    decoded at its own size and resize rule."""
    from pneumobench.serving.bundle import load_bundle
    from pneumobench.serving.predictor import probabilities
    from pneumobench.tracking.models import download_serving

    total = None
    for run_id, weight in members:
        if run_id not in models:
            with tempfile.TemporaryDirectory() as tmp:
                models[run_id] = load_bundle(download_serving(run_id, Path(tmp)))
        model, spec = models[run_id]
        images = external.images(spec.image_size, spec.resize)
        probs = np.concatenate(
            [probabilities(model, images[i : i + 256]) for i in range(0, len(images), 256)]
        )
        total = weight * probs if total is None else total + weight * probs
    assert total is not None
    return total


def _evaluate_row(
    store: Any,
    experiment_id: str,
    row: LeaderboardRow,
    external: ExternalSet,
    config: ExperimentConfig,
    models: dict[str, tuple[Any, Any]],
    force: bool,
) -> ExternalOutcome:
    members = _member_runs(store, row)
    looks = reader.external_looks(store, experiment_id, row.run_id, external.digest)
    if looks and not force:
        return ExternalOutcome(
            row.model,
            skipped=f"already evaluated on this set ({looks} look(s)); --force looks again",
        )
    thresholds = {
        p: float(row.all_metrics[S.threshold_name(p)])
        for p in S.POINTS
        if S.threshold_name(p) in row.all_metrics
    }
    try:
        probs = _probabilities(members, external, models)
    except (TrackingError, ModelError) as exc:  # a run logged before bundles were kept, ...
        return ExternalOutcome(row.model, skipped=str(exc).splitlines()[0][:300])
    if probs.shape[1] != len(config.class_names):
        return ExternalOutcome(row.model, skipped="its classes are not this experiment's task's")
    _, y_int, p_int, patients_int = reader.read_predictions(store, row.run_id)
    inside = TestPredictions(y_int, p_int, patients_int)
    outside = TestPredictions(
        external.labels, probs, external.patients if external.has_patient_ids else None
    )
    result = compare_external(inside, outside, thresholds, config.evaluation, int(row.seed or 0))
    run_id = log_external_run(
        experiment_id,
        row.run_id,
        row.model,
        name=external.name,
        path=str(external.path),
        digest=external.digest,
        images=len(external.records),
        metrics=external_metrics(result),
        tags={
            S.OP_TARGET_SPECIFICITY: str(config.evaluation.operating_points.specificity),
            S.OP_TARGET_SENSITIVITY: str(config.evaluation.operating_points.sensitivity),
        },
        predictions_csv=predictions_csv(
            external.keys, external.patients, external.labels, probs, config.class_names
        ),
        figures=_figures(row.model, external.name, inside, outside, thresholds),
        looks=looks + 1,
    )
    return ExternalOutcome(row.model, result, run_id=run_id)


def external_metrics(result: ExternalResult) -> dict[str, float]:
    """The external run's metrics: ``test_<m>`` (with its interval), ``internal_<m>`` and
    ``shift_<m>`` (with its interval)."""
    out: dict[str, float] = {}
    for key, value in result.external.items():
        out[S.test_metric(key)] = value
        out.update(zip(S.ci_names(S.test_metric(key)), result.external_ci[key], strict=True))
        out[S.internal_metric(key)] = result.internal[key]
        out[S.shift_metric(key)] = result.shift[key]
        out.update(zip(S.ci_names(S.shift_metric(key)), result.shift_ci[key], strict=True))
    return out


def _figures(
    label: str,
    name: str,
    inside: TestPredictions,
    outside: TestPredictions,
    thresholds: dict[str, float],
) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    from pneumobench.evaluate.metrics import is_pneumonia, pneumonia_score

    figures = {
        "plots/external_scores.png": score_shift(
            {label: (pneumonia_score(inside.probs), pneumonia_score(outside.probs))}, name
        ),
    }
    t = thresholds.get(S.DEPLOYED_POINT)
    if t is not None:
        points = []
        for side in (inside, outside):
            sick, said = is_pneumonia(side.y).astype(bool), pneumonia_score(side.probs) >= t
            points.append((float(said[~sick].mean()), float(said[sick].mean())))
        figures["plots/external_operating_point.png"] = operating_shift(
            {label: (points[0], points[1])}, name
        )
    for fig in figures.values():
        plt.close(fig)
    return figures
