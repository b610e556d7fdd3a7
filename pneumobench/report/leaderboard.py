"""The ranking: one row per model (its latest final evaluation), read through MLflow's search API.

What is ranked (``operating_points``, the table in its docstring): by default block 1,
discrimination read off each model's own test curves (sensitivity at a target specificity, and
the like; no threshold carried over from validation); on request a metric at a threshold chosen
on validation (``recall@spec`` and the other ``@`` names). With seed repeats the mean over
seeds is ranked.

How sure the ranking is: the ranked value's interval (logged at evaluation time, patients
resampled), and a paired comparison of every model with the top row on the same test images,
recomputed here from the logged predictions: the difference in the ranked quantity, its paired
patient-clustered bootstrap interval and p-value (Holm-adjusted across models) decide the group.
McNemar (argmax decisions) and DeLong (pneumonia-score AUC) are image-level extras in the JSON.
A random scorer's range on the same test labels is the chance reference. Nothing here imports
torch: reading a leaderboard takes seconds. Rendering: ``render``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pneumobench.config.sections import EvaluationConfig, OperatingPointsConfig
from pneumobench.errors import ConfigError
from pneumobench.evaluate.chance import chance_reference
from pneumobench.evaluate.operating_points import (
    POINTS,
    RANKED,
    ranked_metric,
    ranked_name,
    threshold_name,
)
from pneumobench.evaluate.statistics import (
    cluster_weights,
    holm_adjust,
    paired_comparison,
    percentile_interval,
)
from pneumobench.report.rows import Comparison, LeaderboardRow, RowStatus
from pneumobench.tracking import reader
from pneumobench.tracking import schema as S
from pneumobench.tracking.store import client, find_experiment, require_local_store

RANKABLE = tuple(RANKED)
CHANCE_DRAWS = 200  # random scorers drawn for the chance reference
TIEBREAK = (S.test_metric("roc_auc"), S.test_metric("pr_auc"))


def normalize_metric(metric: str) -> str:
    """A leaderboard metric (``recall``, ``test_recall``) -> the logged name of what is ranked
    (``test_at_spec_recall``); an unknown name is a ConfigError."""
    name = metric.removeprefix(S.TEST_PREFIX)
    if name not in RANKABLE:
        raise ConfigError(
            f"unknown leaderboard metric '{metric}'; choose one of {', '.join(S.DISCRIMINATION)} "
            "(read off each model's test curves, no threshold carried over), or "
            f"{', '.join(S.AT_VALIDATION_THRESHOLD)} (at the thresholds chosen on validation: "
            "the rows are then compared at different test specificities)"
        )
    return S.test_metric(ranked_name(name))


def leaderboard_metric(key: str) -> str:
    """The leaderboard name (``recall``) of a ranked key (``test_at_spec_recall``)."""
    return next(m for m in RANKED if S.test_metric(ranked_name(m)) == key)


def load_leaderboard(
    experiment: str,
    metric: str,
    tracking_uri: str,
    evaluation: EvaluationConfig,
    *,
    compare: bool = True,
) -> list[LeaderboardRow]:
    """One row per model of ``experiment`` (its latest final evaluation), ranked by ``metric``
    (ties: ROC AUC, then PR AUC), the top row first; failed models last, unranked. With
    ``compare`` each row also carries its paired comparison with the top row (module docstring);
    resamples and alpha come from ``evaluation``, the config's section."""
    key = normalize_metric(metric)
    require_local_store(tracking_uri)
    store = client(tracking_uri)
    exp = find_experiment(store, experiment, tracking_uri)
    rows = [_row(run) for run in _latest_final_runs(store, exp.experiment_id)]

    def sort_key(row: LeaderboardRow) -> tuple:
        values = [row.value(k) for k in (key, *TIEBREAK)]
        return (not row.evaluated, *[-v if not math.isnan(v) else math.inf for v in values])

    rows.sort(key=sort_key)
    for rank, row in enumerate(rows, 1):
        row.rank = rank if row.evaluated else None
        row.champion = rank == 1 and row.evaluated
    evaluated = [r for r in rows if r.evaluated]
    if not evaluated:
        return rows
    deployed = _alias_run(store, experiment)
    for row in evaluated:
        row.deployed = row.run_id == deployed
    by_run = {r.run_id: r for r in evaluated}
    for name, runs in reader.external_runs(store, exp.experiment_id).items():
        for model_run, run in runs.items():
            if model_run in by_run:
                by_run[model_run].external[name] = dict(sorted(run.data.metrics.items()))
    targets = evaluated[0].targets(evaluation.operating_points)
    for row in evaluated:
        if row.seed_runs and row.n_seeds > 1:
            _seed_mean_interval(store, row, key, evaluation, targets)
    if compare and len(evaluated) > 1:
        compare_with_champion(store, evaluated, key, evaluation, targets)
    if compare:
        _chance(store, evaluated, key, evaluation, targets)
    return rows


def _alias_run(store: Any, experiment: str) -> str | None:
    """The run the registry's ``champion`` alias points at (None: no alias, no registry)."""
    from pneumobench.tracking.models import CHAMPION, registered_name

    try:
        return str(store.get_model_version_by_alias(registered_name(experiment), CHAMPION).run_id)
    except Exception:  # MlflowException: no such model or alias; a store without a registry
        return None


def _chance(
    store: Any,
    rows: list[LeaderboardRow],
    key: str,
    evaluation: EvaluationConfig,
    targets: OperatingPointsConfig,
) -> None:
    """The random scorer's range of the ranked metric on the top row's test labels; rows whose
    value does not clear its upper end are flagged (threshold-free metrics only)."""
    metric = leaderboard_metric(key)
    if RANKED[metric][0] is not None:
        return
    _, y, probs, _ = reader.read_predictions(store, rows[0].run_id)
    reference = chance_reference(
        y,
        probs.shape[1],
        [metric],
        targets,
        n_draws=CHANCE_DRAWS,
        seed=int(rows[0].seed or 0),
        level=evaluation.ci_level,
    )[metric]
    for row in rows:
        row.chance = reference
        row.below_chance = not row.value(key) > reference[2]


def best_on_validation(
    tracking_uri: str, rows: list[LeaderboardRow], key: str, targets: OperatingPointsConfig
) -> LeaderboardRow | None:
    """The evaluated row (a single model or an ensemble: its members were chosen on validation
    too) with the best VALIDATION value of the ranked metric, recomputed from each row's logged
    validation predictions at its own thresholds; None when no row has them."""
    store = client(tracking_uri)
    metric = leaderboard_metric(key)
    best: tuple[float, LeaderboardRow] | None = None
    for row in rows:
        if not row.evaluated:
            continue
        try:
            _, y, probs, _ = reader.read_predictions(store, row.run_id, S.VAL_PREDICTIONS)
        except Exception:  # evaluated before validation predictions were logged
            continue
        thresholds = {
            p: row.all_metrics[threshold_name(p)]
            for p in POINTS
            if threshold_name(p) in row.all_metrics
        }
        one = np.ones((1, len(y)))
        value = float(ranked_metric(metric, y, probs, thresholds, one, targets)[0])
        if best is None or value > best[0]:
            best = (value, row)
    return best[1] if best else None


def champion_note(
    tracking_uri: str, rows: list[LeaderboardRow], key: str, evaluation: EvaluationConfig
) -> str | None:
    """With ``evaluation.champion: validation``: which row the registry's champion is, and why."""
    if evaluation.champion != "validation":
        return None
    chosen = best_on_validation(
        tracking_uri, rows, key, targets_of(rows, evaluation.operating_points)
    )
    if chosen is None:
        return None
    return (
        f"The registered champion is chosen on validation: {chosen.model} (the best single "
        f"model by this metric on validation; its test numbers are an unbiased estimate)."
    )


def test_looks(tracking_uri: str, rows: list[LeaderboardRow]) -> tuple[int, int]:
    """How often the rows' test set has been evaluated in this store, in how many experiments."""
    digest = next((r.test_digest for r in rows if r.evaluated and r.test_digest), None)
    return reader.test_set_looks(client(tracking_uri), digest) if digest else (0, 0)


def targets_of(rows: list[LeaderboardRow], default: OperatingPointsConfig) -> OperatingPointsConfig:
    """The operating-point targets the rows were evaluated with (the top row's tags)."""
    first = next((r for r in rows if r.evaluated), None)
    return first.targets(default) if first else default


def _latest_final_runs(store: Any, experiment_id: str) -> list[Any]:
    """Each label's latest model run with a final evaluation (a done one over a failed one);
    a label with none shows its latest run, so an interrupted model is listed, not lost."""
    latest: dict[str, Any] = {}
    unfinished: dict[str, Any] = {}
    for run in reader.model_runs(store, experiment_id):
        label = run.data.tags.get(S.LABEL, run.info.run_name)
        state = run.data.tags.get(S.FINAL)
        if state not in (S.FINAL_DONE, S.FINAL_FAILED):
            if run.data.tags.get(S.STUDY):  # a model's parent run (not a lost claim)
                unfinished.setdefault(label, run)  # newest first
            continue
        current = latest.get(label)
        if current is None or (
            current.data.tags.get(S.FINAL) != S.FINAL_DONE and state == S.FINAL_DONE
        ):
            latest[label] = run
    return list(latest.values()) + [r for k, r in unfinished.items() if k not in latest]


def _members(store: Any, row: LeaderboardRow) -> list[tuple[np.ndarray, dict[str, float]]]:
    """(probabilities, thresholds) of each final model behind a row: one, or one per seed."""
    out = []
    for run_id in row.seed_run_ids:
        metrics = row.all_metrics if run_id == row.run_id else store.get_run(run_id).data.metrics
        _, _, probs, _ = reader.read_predictions(store, run_id)
        thresholds = {
            point: metrics[threshold_name(point)]
            for point in POINTS
            if threshold_name(point) in metrics
        }
        out.append((probs, thresholds))
    return out


def _seed_mean_interval(
    store: Any,
    row: LeaderboardRow,
    key: str,
    evaluation: EvaluationConfig,
    targets: OperatingPointsConfig,
) -> None:
    """The interval of the mean over seeds of the ranked quantity: every seed's model on the same
    resampled patients, averaged per resample."""
    _, y, _, patients = reader.read_predictions(store, row.run_id)
    w = cluster_weights(y, patients, evaluation.bootstrap_resamples, int(row.seed or 0))
    metric = leaderboard_metric(key)
    means = np.mean(
        [ranked_metric(metric, y, p, t, w, targets) for p, t in _members(store, row)], axis=0
    )
    low, high = S.ci_names(S.seed_names(key)[0])
    row.metrics[low], row.metrics[high] = percentile_interval(means, evaluation.ci_level)


def compare_with_champion(
    store: Any,
    rows: list[LeaderboardRow],
    key: str,
    evaluation: EvaluationConfig,
    targets: OperatingPointsConfig,
) -> None:
    """Annotate rows in place: difference to the top row in the ranked quantity, its paired
    interval and p-value (patients resampled), Holm-adjusted; the group."""
    metric = leaderboard_metric(key)
    champion = rows[0]
    paths_c, y_c, _, patients = reader.read_predictions(store, champion.run_id)
    members_c = _members(store, champion)
    seed = int(champion.seed or 0)
    pending: list[LeaderboardRow] = []
    for row in rows[1:]:
        paths, y, _, _ = reader.read_predictions(store, row.run_id)
        if paths != paths_c or not np.array_equal(y, y_c):
            row.comparison_note = "not the same test images as the champion: not compared"
            continue
        cmp = paired_comparison(
            y,
            _members(store, row),
            members_c,
            metric,
            groups=patients,
            n_resamples=evaluation.bootstrap_resamples,
            seed=seed,
            level=evaluation.ci_level,
            targets=targets,
        )
        row.comparison = Comparison(
            vs_champion_diff=cmp.difference,
            vs_champion_ci_low=cmp.diff_ci[0],
            vs_champion_ci_high=cmp.diff_ci[1],
            p_bootstrap=cmp.p_bootstrap,
            p_mcnemar_image_level=cmp.p_mcnemar,
            mcnemar_discordant=[cmp.mcnemar_b, cmp.mcnemar_c],
            p_delong_image_level=cmp.p_delong,
        )
        pending.append(row)
    p_values = [r.comparison.p_bootstrap for r in pending if r.comparison]
    adjusted = holm_adjust([p if math.isfinite(p) else 1.0 for p in p_values])
    champion.group, champion.significantly_worse = "A", False
    for row, p, p_adj in zip(pending, p_values, adjusted, strict=True):
        assert row.comparison is not None
        worse = p_adj < evaluation.alpha and row.comparison.vs_champion_diff < 0
        row.comparison.p_value, row.comparison.p_holm = p, p_adj
        row.significantly_worse, row.group = worse, "B" if worse else "A"


def _status(run: Any) -> tuple[RowStatus, str | None]:
    tags = run.data.tags
    if tags.get(S.FINAL) == S.FINAL_DONE:
        return RowStatus.EVALUATED, None
    if tags.get(S.FINAL) == S.FINAL_FAILED:
        return RowStatus.FAILED, tags.get(S.FAIL_REASON)
    trials = tags.get(S.FINAL_TRIALS)
    state = {"RUNNING": "still running (or its process was killed)"}.get(
        run.info.status, f"its run ended {run.info.status}"
    )
    return RowStatus.INCOMPLETE, (
        f"search not finished, {state}"
        + (f" after {trials} trial(s)" if trials else "")
        + "; the same `pneumobench run` resumes it"
    )


def _row(run: Any) -> LeaderboardRow:
    tags, metrics = run.data.tags, run.data.metrics
    status, reason = _status(run)
    prefixes = (S.TEST_PREFIX, S.BEST_VAL_PREFIX, S.THRESHOLD_PREFIX, S.VAL_AT_PREFIX, S.N_SEEDS)
    return LeaderboardRow(
        model=tags.get(S.LABEL, run.info.run_name),
        registry_name=tags.get(S.MODEL),
        status=status,
        run_id=run.info.run_id,
        family=tags.get(S.FAMILY),
        num_params=int(tags[S.NUM_PARAMS]) if tags.get(S.NUM_PARAMS, "").isdigit() else None,
        pretrained_source=tags.get(S.PRETRAINED_SOURCE),
        image_size=tags.get(S.IMAGE_SIZE),
        dataset_digest=tags.get(S.DATASET_DIGEST),
        seed=tags.get(S.SEED),
        fail_reason=reason,
        bootstrap_unit=tags.get(S.BOOTSTRAP_UNIT, S.BOOTSTRAP_IMAGE),
        op_target_sensitivity=tags.get(S.OP_TARGET_SENSITIVITY),
        op_target_specificity=tags.get(S.OP_TARGET_SPECIFICITY),
        seed_runs=tags.get(S.SEED_MEMBERS),
        test_digest=tags.get(S.TEST_DIGEST),
        validation_note=tags.get(S.VALIDATION_NOTE),
        metrics={k: v for k, v in sorted(metrics.items()) if k.startswith(prefixes)},
        all_metrics=dict(metrics),
    )
