"""The ranking: one row per model (its latest final evaluation), read through MLflow's search API.

What is ranked: threshold metrics at their validation-chosen operating points, never at argmax
(``operating_points.RANKED``: recall at a fixed specificity, specificity and precision at a fixed
sensitivity, F1 and accuracy at their best validation thresholds; ROC and PR AUC as they are).
With seed repeats the mean over seeds is ranked.

How sure the ranking is: the ranked value's interval (logged at evaluation time, patients
resampled), and a paired comparison of every model with the champion on the same test images,
recomputed here from the logged predictions: the difference in the ranked quantity, its paired
patient-clustered bootstrap interval and p-value (Holm-adjusted across models) decide the group.
McNemar (argmax decisions) and DeLong (pneumonia-score AUC) are image-level extras in the JSON.
Nothing here imports torch: reading a leaderboard takes seconds.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import numpy as np

from pneumobench.benchmark.operating_points import RANKED, ranked_name, threshold_name
from pneumobench.errors import ConfigError
from pneumobench.text import markdown_table
from pneumobench.tracking import reader
from pneumobench.tracking import schema as S
from pneumobench.tracking.store import client, find_experiment, require_local_store

RANKABLE = tuple(RANKED)
TIEBREAK = (S.test_metric("roc_auc"), S.test_metric("pr_auc"))
FORMATS = ("table", "json", "csv", "markdown")
HEADERS = {  # short column names that say where each number is measured
    "at_spec_recall": "recall@spec",
    "at_sens_specificity": "specificity@sens",
    "at_sens_precision": "precision@sens",
    "at_f1_f1": "f1@maxF1",
    "at_acc_accuracy": "accuracy@maxAcc",
    "roc_auc": "roc_auc",
    "pr_auc": "pr_auc",
    S.N_TEST_EVALUATIONS: "test evals",
}


def normalize_metric(metric: str) -> str:
    """A leaderboard metric (``recall``, ``test_recall``) -> the logged name of what is ranked
    (``test_at_spec_recall``); an unknown name is a ConfigError."""
    name = metric.removeprefix("test_")
    if name not in RANKABLE:
        raise ConfigError(
            f"unknown leaderboard metric '{metric}'; choose one of {', '.join(RANKABLE)} "
            "(with or without the test_ prefix). Threshold metrics are ranked at operating points "
            "chosen on validation: recall at a fixed specificity, specificity and precision at a "
            "fixed sensitivity, f1 and accuracy at their best validation threshold."
        )
    return S.test_metric(ranked_name(name))


def leaderboard_metric(key: str) -> str:
    """The leaderboard name (``recall``) of a ranked key (``test_at_spec_recall``)."""
    return next(m for m in RANKED if S.test_metric(ranked_name(m)) == key)


def rank_value(row: dict[str, Any], key: str) -> float:
    """With repeated seeds the mean ranks; otherwise the single final model's value."""
    value = row.get(S.seed_names(key)[0], row.get(key, math.nan))
    return float(value) if value is not None else math.nan


def load_leaderboard(
    experiment: str,
    metric: str = "recall",
    tracking_uri: str = "sqlite:///mlflow.db",
    *,
    compare: bool = True,
    n_resamples: int = 2000,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """One row per model of ``experiment`` (its latest final evaluation), ranked by ``metric``
    (ties: F1, then ROC AUC), the champion first; failed models last, unranked. With ``compare``
    each row also carries its paired comparison with the champion (see the module docstring)."""
    key = normalize_metric(metric)
    require_local_store(tracking_uri)
    store = client(tracking_uri)
    exp = find_experiment(store, experiment, tracking_uri)
    latest: dict[str, Any] = {}
    for run in reader.model_runs(store, exp.experiment_id):
        label = run.data.tags.get(S.LABEL, run.info.run_name)
        state = run.data.tags.get(S.FINAL)
        if state not in (S.FINAL_DONE, S.FINAL_FAILED):
            continue
        current = latest.get(label)
        if current is None or (
            current.data.tags.get(S.FINAL) != S.FINAL_DONE and state == S.FINAL_DONE
        ):
            latest[label] = run
    rows = [_row(run) for run in latest.values()]

    def sort_key(row: dict[str, Any]) -> tuple:
        values = [rank_value(row, k) for k in (key, *TIEBREAK)]
        return (
            row["status"] != "evaluated",
            *[-v if not math.isnan(v) else math.inf for v in values],
        )

    rows.sort(key=sort_key)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if row["status"] == "evaluated" else None
        row["champion"] = rank == 1 and row["status"] == "evaluated"
    evaluated = [r for r in rows if r["status"] == "evaluated"]
    for row in evaluated:
        if row.get("seed_runs") and row.get(S.N_SEEDS, 0) > 1:
            _seed_mean_interval(store, row, key, n_resamples)
    if compare and len(evaluated) > 1:
        compare_with_champion(store, evaluated, key, n_resamples=n_resamples, alpha=alpha)
    for row in rows:
        row.pop("_metrics", None)
    return rows


def _members(store: Any, row: dict[str, Any]) -> list[tuple[np.ndarray, dict[str, float]]]:
    """(probabilities, thresholds) of each final model behind a row: one, or one per seed."""
    run_ids = [r for r in (row.get("seed_runs") or "").split(",") if r] or [row["run_id"]]
    out = []
    for run_id in run_ids:
        metrics = row["_metrics"] if run_id == row["run_id"] else store.get_run(run_id).data.metrics
        _, _, probs, _ = reader.read_predictions(store, run_id)
        thresholds = {
            point: metrics[threshold_name(point)]
            for point in ("sens", "spec", "f1", "acc")
            if threshold_name(point) in metrics
        }
        out.append((probs, thresholds))
    return out


def _seed_mean_interval(store: Any, row: dict[str, Any], key: str, n_resamples: int) -> None:
    """The interval of the mean over seeds of the ranked quantity: every seed's model on the same
    resampled patients, averaged per resample."""
    from pneumobench.benchmark.operating_points import ranked_metric
    from pneumobench.benchmark.statistics import cluster_weights, percentile_interval

    _, y, _, patients = reader.read_predictions(store, row["run_id"])
    w = cluster_weights(y, patients, n_resamples, int(row.get("seed") or 0))
    metric = leaderboard_metric(key)
    means = np.mean([ranked_metric(metric, y, p, t, w) for p, t in _members(store, row)], axis=0)
    low, high = S.ci_names(S.seed_names(key)[0])
    row[low], row[high] = percentile_interval(means)


def compare_with_champion(
    store: Any, rows: list[dict[str, Any]], key: str, *, n_resamples: int, alpha: float
) -> None:
    """Annotate rows in place: difference to the champion in the ranked quantity, its paired
    interval and p-value (patients resampled), Holm-adjusted; the group."""
    from pneumobench.benchmark.statistics import holm_adjust, paired_comparison

    metric = leaderboard_metric(key)
    champion = rows[0]
    paths_c, y_c, _, patients = reader.read_predictions(store, champion["run_id"])
    members_c = _members(store, champion)
    seed = int(champion.get("seed") or 0)
    pending: list[tuple[dict[str, Any], float]] = []
    for row in rows[1:]:
        paths, y, _, _ = reader.read_predictions(store, row["run_id"])
        if paths != paths_c or not np.array_equal(y, y_c):
            row["comparison_note"] = "not the same test images as the champion: not compared"
            continue
        cmp = paired_comparison(
            y,
            _members(store, row),
            members_c,
            metric,
            groups=patients,
            n_resamples=n_resamples,
            seed=seed,
        )
        row.update(
            vs_champion_diff=cmp.difference,
            vs_champion_ci_low=cmp.diff_ci[0],
            vs_champion_ci_high=cmp.diff_ci[1],
            p_bootstrap=cmp.p_bootstrap,
            p_mcnemar_image_level=cmp.p_mcnemar,
            mcnemar_discordant=[cmp.mcnemar_b, cmp.mcnemar_c],
            p_delong_image_level=cmp.p_delong,
        )
        pending.append((row, cmp.p_bootstrap))
    adjusted = holm_adjust([p if math.isfinite(p) else 1.0 for _, p in pending])
    champion["group"] = "A"
    champion["significantly_worse"] = False
    for (row, p), p_adj in zip(pending, adjusted, strict=True):
        worse = p_adj < alpha and row["vs_champion_diff"] < 0
        row.update(p_value=p, p_holm=p_adj, significantly_worse=worse, group="B" if worse else "A")


def _row(run: Any) -> dict[str, Any]:
    tags, metrics = run.data.tags, run.data.metrics
    row: dict[str, Any] = {
        "rank": None,
        "model": tags.get(S.LABEL, run.info.run_name),
        "registry_name": tags.get(S.MODEL),
        "status": "evaluated" if tags.get(S.FINAL) == S.FINAL_DONE else "failed",
        "run_id": run.info.run_id,
        "family": tags.get(S.FAMILY),
        "num_params": int(tags[S.NUM_PARAMS]) if tags.get(S.NUM_PARAMS, "").isdigit() else None,
        "pretrained_source": tags.get(S.PRETRAINED_SOURCE),
        "image_size": tags.get(S.IMAGE_SIZE),
        "dataset_digest": tags.get(S.DATASET_DIGEST),
        "seed": tags.get(S.SEED),
        "fail_reason": tags.get(S.FAIL_REASON),
        "bootstrap_unit": tags.get(S.BOOTSTRAP_UNIT, "image"),
        "op_target_sensitivity": tags.get(S.OP_TARGET_SENSITIVITY),
        "op_target_specificity": tags.get(S.OP_TARGET_SPECIFICITY),
        "seed_runs": tags.get(S.SEED_MEMBERS),
        "_metrics": dict(metrics),
    }
    prefixes = (S.TEST_PREFIX, f"{S.BEST_PREFIX}val_", S.THRESHOLD_PREFIX, "val_at_", S.N_SEEDS)
    row.update({k: v for k, v in sorted(metrics.items()) if k.startswith(prefixes)})
    return row


# --- rendering ----------------------------------------------------------------------------


def _columns(key: str) -> list[str]:
    ranked = [S.test_metric(ranked_name(m)) for m in RANKED]
    others = [k for k in ranked if k != key]
    return ["rank", "model", key, "vs_champion", "group", *others, S.N_TEST_EVALUATIONS]


def _header(column: str) -> str:
    name = column.removeprefix(S.TEST_PREFIX)
    return HEADERS.get(name, HEADERS.get(column, name))


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return "" if value is None else str(value)


def _p(value: float) -> str:
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


def _cell(row: dict[str, Any], column: str, key: str) -> str:
    if row["status"] != "evaluated":
        return {"rank": "-", "model": row["model"], key: "failed"}.get(column, "")
    if column == key:
        low, high = (row.get(name) for name in S.ci_names(key))
        text = _fmt(row.get(key))
        mean, std = S.seed_names(key)
        if mean in row and row.get(S.N_SEEDS, 0) > 1:  # the mean's own interval (all seeds)
            low, high = (row.get(name) for name in S.ci_names(mean))
            text = f"{_fmt(row[mean])}±{_fmt(row.get(std))}"
        return f"{text} [{_fmt(low)}, {_fmt(high)}]" if low is not None else text
    if column == "vs_champion":
        if row.get("champion"):
            return "champion"
        if "vs_champion_diff" not in row:
            return row.get("comparison_note", "")
        return (
            f"{row['vs_champion_diff']:+.3f} [{row['vs_champion_ci_low']:+.3f}, "
            f"{row['vs_champion_ci_high']:+.3f}] {_p(row['p_holm'])}"
        )
    if column in ("rank", S.N_TEST_EVALUATIONS):  # counts
        value = row.get(column)
        return "" if value is None else str(int(value))
    return _fmt(row.get(column))


def table_cells(rows: list[dict[str, Any]], key: str) -> tuple[list[str], list[list[str]]]:
    """Column headers and the text of every cell, as the table, Markdown and report show them."""
    columns = _columns(key)
    return [_header(c) for c in columns], [[_cell(row, c, key) for c in columns] for row in rows]


def render(rows: list[dict[str, Any]], fmt: str, metric: str) -> str:
    """The leaderboard as ``json``, ``csv`` or ``markdown`` text (``table`` is :func:`rich_table`)."""
    key = normalize_metric(metric)
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    columns = _columns(key)
    if fmt == "csv":
        fields = [
            *columns[:3],
            *S.ci_names(key),
            "vs_champion_diff",
            "vs_champion_ci_low",
            "vs_champion_ci_high",
            "p_holm",
            "significantly_worse",
            "group",
            *columns[5:],
            "status",
            "run_id",
            "champion",
        ]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    if fmt == "markdown":
        headers, table = table_cells(rows, key)
        for row, cells in zip(rows, table, strict=True):
            if row["champion"]:
                cells[1] = f"**{cells[1]}**"
        return f"{markdown_table(headers, table)}\n\n{legend(key, rows)}"
    raise ValueError(fmt)


def legend(key: str, rows: list[dict[str, Any]] | None = None) -> str:
    """How to read the table, in one paragraph: where each number is measured, how sure it is."""
    from pneumobench.benchmark.operating_points import describe

    first = (rows or [{}])[0]
    sensitivity = float(first.get("op_target_sensitivity") or 0.95)
    specificity = float(first.get("op_target_specificity") or 0.90)
    unit = first.get("bootstrap_unit", "image")
    resampled = (
        "test patients resampled (stratified by class)"
        if unit == "patient"
        else "test images resampled (no patient ids: each image its own patient)"
    )
    return (
        f"Ranked by {describe(leaderboard_metric(key), sensitivity, specificity)} (ties: "
        f"roc_auc, pr_auc); with seed repeats the mean over seeds. @sens: at the threshold "
        f"reaching sensitivity {sensitivity:g} on validation; @spec: at specificity "
        f"{specificity:g} on validation; @maxF1 / @maxAcc: at the validation threshold that "
        f"maximizes them. 95% bootstrap interval in brackets, {resampled}. vs_champion: paired "
        "difference in the ranked quantity on the same test images [paired bootstrap interval], "
        "Holm-adjusted p of the same bootstrap. Group A: cannot be told apart from the champion; "
        "B: significantly worse. test evals: how often the model's test set was evaluated."
    )


def rich_table(rows: list[dict[str, Any]], metric: str, title: str) -> Any:
    """The leaderboard as a rich table for the terminal: champion starred, group B dimmed."""
    from rich.markup import escape
    from rich.table import Table

    key = normalize_metric(metric)

    table = Table(title=title, caption=escape(legend(key, rows)))
    columns = _columns(key)
    for c in columns:
        table.add_column(_header(c), justify="left" if c in ("model", "vs_champion") else "right")
    for row in rows:
        cells = [_cell(row, c, key) for c in columns]
        style = None
        if row["champion"]:
            cells[1] = f"★ {cells[1]}"
            style = "bold green"
        elif row["status"] != "evaluated":
            style = "red"
        elif row.get("significantly_worse"):
            style = "dim"
        table.add_row(*cells, style=style)
    return table
