"""Soft-vote ensembles of final models, evaluated as leaderboard rows like any model.

Two kinds, both built after every model of a run has its final evaluation, from the validation
and test predictions each final model logged (nothing is retrained):

- the **seed ensemble** of a model with two or more seeds (``evaluation.seeds``, or the model
  entry's own ``seeds``; unless ``evaluation.ensemble.seeds`` is off): its final model and its
  seed repeats, averaged; row ``<label>-seed-ensemble``;
- the **top-k ensemble** (``evaluation.ensemble.top_k``): the k models with the best VALIDATION
  ROC AUC, averaged; a model that has a seed ensemble takes part as its seed ensemble. Row
  ``ensemble-top<k>``.

Either way the class probabilities are averaged on validation and on test, the ensemble's own
operating points are chosen on the averaged validation probabilities, and its test numbers are
computed once: the same intervals, and in the leaderboard the same paired tests against the
champion. Each is logged as a model run of family ``ensemble`` whose tags name its kind
(``pneumobench.ensemble_kind``), its members and the runs holding their predictions. The same
ensemble (label, members, data) is not evaluated on test again unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console
from sklearn.metrics import roc_auc_score

from pneumobench.benchmark.deploy import publish_ensemble
from pneumobench.config import ExperimentConfig
from pneumobench.config.plan import plan_models
from pneumobench.data import PreparedData
from pneumobench.evaluate.held_out import (
    evaluate_probabilities,
    headline,
    metrics_to_log,
    validation_csv,
)
from pneumobench.evaluate.metrics import pneumonia_score
from pneumobench.report.plots import final_model_figures
from pneumobench.tracking import reader, writer
from pneumobench.tracking import schema as S
from pneumobench.tracking.store import client

FAMILY = S.FAMILY_ENSEMBLE


@dataclass
class Member:
    """One member's logged predictions, aligned with the experiment's splits."""

    name: str  # as the ensemble's members tag shows it: a label, or ``<label>/seed-<s>``
    run_id: str  # the run whose predictions these are
    val_probs: np.ndarray
    test_probs: np.ndarray
    val_auc: float


@dataclass(frozen=True)
class EnsembleRun:
    """What every ensemble row of one ``pneumobench run`` shares."""

    config: ExperimentConfig
    data: PreparedData
    experiment_id: str
    console: Console
    force: bool


@dataclass(frozen=True)
class EnsembleRow:
    """One ensemble to evaluate: its label, members, kind tags and a line saying what it is."""

    label: str
    members: list[Member]
    kind_tags: dict[str, str]
    description: str


def ensemble_label(k: int) -> str:
    """The leaderboard label of the top-k ensemble."""
    return f"ensemble-top{k}"


def seed_ensemble_label(label: str) -> str:
    """The leaderboard label of a model's seed ensemble."""
    return f"{label}-seed-ensemble"


def build_ensembles(
    config: ExperimentConfig,
    data: PreparedData,
    experiment_id: str,
    console: Console,
    force: bool = False,
) -> list[str]:
    """Every ensemble the config asks for: the seed ensembles (of the models with two or more
    seeds), then the top-k ensemble over the models (seed ensembles standing in for their
    models); the run ids of those evaluated now."""
    evaluated = []
    seeded = any(len(plan.seeds) >= 2 for plan in plan_models(config))
    if config.evaluation.ensemble.seeds and seeded:
        evaluated += build_seed_ensembles(config, data, experiment_id, console, force)
    if config.evaluation.ensemble.top_k >= 2:
        run_id = build_ensemble(config, data, experiment_id, console, force)
        evaluated += [run_id] if run_id else []
    return evaluated


def build_seed_ensembles(
    config: ExperimentConfig,
    data: PreparedData,
    experiment_id: str,
    console: Console,
    force: bool = False,
) -> list[str]:
    """The seed ensemble of every final model with two or more seeds (its
    ``pneumobench.seed_runs``): the run ids of those evaluated now."""
    store = client()
    evaluated = []
    for label, run in _latest_singles(store, experiment_id, data.digest).items():
        run_ids = [r for r in run.data.tags.get(S.SEED_MEMBERS, "").split(",") if r]
        if len(run_ids) < 2:
            continue
        members: list[Member] = []
        for run_id in run_ids:
            seed = store.get_run(run_id).data.tags.get(S.SEED, "?")
            member = _read_member(store, run_id, f"{label}/seed-{seed}", data)
            if isinstance(member, str):
                console.print(f"  [dim]{seed_ensemble_label(label)} not built: {member}[/]")
                break
            members.append(member)
        else:
            seeds = ",".join(m.name.rsplit("seed-", 1)[1] for m in members)
            row = EnsembleRow(
                seed_ensemble_label(label),
                members,
                {S.ENSEMBLE_KIND: S.ENSEMBLE_SEEDS, S.ENSEMBLE_OF: label, S.SEED: str(config.seed)},
                f"seeds {seeds} of {label}",
            )
            run_id = _evaluate(EnsembleRun(config, data, experiment_id, console, force), row)
            evaluated += [run_id] if run_id else []
    return evaluated


def build_ensemble(
    config: ExperimentConfig,
    data: PreparedData,
    experiment_id: str,
    console: Console,
    force: bool = False,
) -> str | None:
    """Evaluate the top-k ensemble once (unless the same members were evaluated before and
    ``force`` is off); its run id, or None when fewer than two final models qualify."""
    k = config.evaluation.ensemble.top_k
    members, notes = candidates(experiment_id, data)
    for note in notes:
        console.print(f"  [dim]ensemble: {note}[/]")
    chosen = sorted(members, key=lambda m: -m.val_auc)[:k]
    if len(chosen) < 2:
        console.print("  [yellow]ensemble: fewer than two final models to combine[/]")
        return None
    names = ",".join(m.name for m in chosen)
    row = EnsembleRow(
        ensemble_label(len(chosen)),  # named by its members, which may be fewer than k
        chosen,
        {S.ENSEMBLE_KIND: S.ENSEMBLE_TOP_K, S.SEED: str(config.seed)},
        f"{names}, chosen by validation ROC AUC",
    )
    return _evaluate(EnsembleRun(config, data, experiment_id, console, force), row)


def candidates(experiment_id: str, data: PreparedData) -> tuple[list[Member], list[str]]:
    """One candidate per model label for the top-k ensemble: the latest final model on these
    data, or its seed ensemble when that ensemble was built on exactly that final model's seeds;
    notes on the models left out and why."""
    store = client()
    singles = _latest_singles(store, experiment_id, data.digest)
    seed_ensembles = _latest_seed_ensembles(store, experiment_id, data.digest)
    members, notes = [], []
    for label, run in singles.items():
        chosen, name = run, label
        seeds = seed_ensembles.get(label)
        if seeds is not None and run.info.run_id in seeds.data.tags.get(S.ENSEMBLE_RUNS, ""):
            chosen, name = seeds, seed_ensemble_label(label)
        member = _read_member(store, chosen.info.run_id, name, data)
        if isinstance(member, str):
            notes.append(f"{label} left out: {member}")
        else:
            members.append(member)
    return members, notes


def _evaluate(run: EnsembleRun, row: EnsembleRow) -> str | None:
    """Average the row's members, choose the operating points on validation, look at test once
    and log the row; None when this very ensemble was evaluated before (and ``force`` is off)."""
    config, data, experiment_id, console, force = (
        run.config,
        run.data,
        run.experiment_id,
        run.console,
        run.force,
    )
    label, members, kind_tags, description = row.label, row.members, row.kind_tags, row.description
    names = ",".join(m.name for m in members)
    looks = _earlier_looks(experiment_id, label, names, data.digest)
    if looks and not force:
        console.print(f"  {label} of {names}: already evaluated (--force evaluates again)")
        return None
    val_probs = np.mean([m.val_probs for m in members], axis=0)
    test_probs = np.mean([m.test_probs for m in members], axis=0)
    result = evaluate_probabilities(test_probs, val_probs, data, config.evaluation, config.seed)
    tags = _tags(config, data, names, members, kind_tags)
    metrics = {
        **metrics_to_log(result),
        **{f"member_val_auc_{m.name}": m.val_auc for m in members},
    }
    run_id = writer.log_ensemble_run(
        experiment_id,
        label,
        tags,
        metrics,
        result.predictions_csv(data.test.keys, data.class_names),
        validation_csv(result, data) or "",
        final_model_figures(result, data.class_names, label),
        looks + 1,
    )
    console.print(f"[bold green]{label}[/] ({description}): {headline(result, config.evaluation)}")
    try:
        publish_ensemble(
            run_id,
            [m.run_id for m in members],
            label,
            result.thresholds,
            config,
            data.test.images,
            test_probs,
            console,
        )
    except Exception as exc:  # the row is evaluated and logged; only its deployment failed
        console.print(f"  [yellow]{label} not deployable[/]: {type(exc).__name__}: {exc}"[:400])
    return run_id


def _tags(
    config: ExperimentConfig,
    data: PreparedData,
    names: str,
    members: list[Member],
    kind_tags: dict[str, str],
) -> dict[str, str]:
    """An ensemble row's tags: what it averages, the data and how it was judged."""
    targets = config.evaluation.operating_points
    return {
        S.MODEL: f"{FAMILY}({names})",
        S.FAMILY: FAMILY,
        S.ENSEMBLE_MEMBERS: names,
        S.ENSEMBLE_RUNS: ",".join(m.run_id for m in members),
        S.PRETRAINED_SOURCE: "members",
        **S.data_tags(
            config.task,
            config.data.image_size,
            config.data.source,
            (data.digest, data.test_digest),
            data.class_names,
            data.validation_note,
        ),
        **S.evaluation_tags(targets.sensitivity, targets.specificity, data.has_patient_ids),
        **kind_tags,
    }


def _latest_singles(store: Any, experiment_id: str, digest: str) -> dict[str, Any]:
    """The latest finished final run of each single model (not an ensemble) on these data."""
    latest: dict[str, Any] = {}
    for run in reader.model_runs(store, experiment_id):  # newest first
        tags = run.data.tags
        label = tags.get(S.LABEL, run.info.run_name)
        if (
            tags.get(S.FINAL) == S.FINAL_DONE
            and tags.get(S.FAMILY) != FAMILY
            and tags.get(S.DATASET_DIGEST) == digest
            and label not in latest
        ):
            latest[label] = run
    return latest


def _latest_seed_ensembles(store: Any, experiment_id: str, digest: str) -> dict[str, Any]:
    """The latest seed ensemble of each model label on these data."""
    latest: dict[str, Any] = {}
    for run in reader.model_runs(store, experiment_id):  # newest first
        tags = run.data.tags
        base = tags.get(S.ENSEMBLE_OF)
        if (
            tags.get(S.ENSEMBLE_KIND) == S.ENSEMBLE_SEEDS
            and tags.get(S.FINAL) == S.FINAL_DONE
            and tags.get(S.DATASET_DIGEST) == digest
            and base
            and base not in latest
        ):
            latest[base] = run
    return latest


def _read_member(store: Any, run_id: str, name: str, data: PreparedData) -> Member | str:
    """A run's logged validation and test predictions as a member, or why it cannot be one."""
    try:
        val_keys, _, val_probs, _ = reader.read_predictions(store, run_id, S.VAL_PREDICTIONS)
    except Exception:  # evaluated before validation predictions were logged
        return f"{name} has no validation predictions logged (re-run with --force)"
    test_keys, _, test_probs, _ = reader.read_predictions(store, run_id)
    if val_keys != list(data.val.keys) or test_keys != list(data.test.keys):
        return f"the predictions of {name} are not of these splits"
    auc = roc_auc_score(data.val.labels != 0, pneumonia_score(val_probs))
    return Member(name, run_id, val_probs, test_probs, float(auc))


def _earlier_looks(experiment_id: str, label: str, members: str, digest: str) -> int:
    """How often this very ensemble (label, members, data) was evaluated on test before: its
    finished runs, one look each."""
    return sum(
        1
        for run in reader.model_runs(client(), experiment_id)
        if run.data.tags.get(S.LABEL) == label
        and run.data.tags.get(S.ENSEMBLE_MEMBERS) == members
        and run.data.tags.get(S.DATASET_DIGEST) == digest
        and run.data.tags.get(S.FINAL) == S.FINAL_DONE
    )
