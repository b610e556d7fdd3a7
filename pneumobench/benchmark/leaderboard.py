"""The ranking: one row per model (its latest final evaluation), read through MLflow's search API.

Besides point estimates it says how sure the ranking is: each metric's bootstrap interval (logged
at evaluation time), and a paired comparison of every model with the champion on the same test
images, recomputed here from the logged predictions CSVs (McNemar, DeLong, paired bootstrap,
Holm-adjusted). Nothing here imports torch: reading a leaderboard takes seconds.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import numpy as np

from pneumobench.benchmark.metrics import LEADERBOARD_METRICS
from pneumobench.errors import ConfigError
from pneumobench.text import markdown_table
from pneumobench.tracking import reader
from pneumobench.tracking import schema as S
from pneumobench.tracking.store import client, find_experiment, require_local_store

RANKABLE = (*LEADERBOARD_METRICS, "op_recall", "op_specificity")
TIEBREAK = (S.test_metric("f1"), S.test_metric("roc_auc"))
FORMATS = ("table", "json", "csv", "markdown")


def normalize_metric(metric: str) -> str:
    """``recall`` or ``test_recall`` -> ``test_recall``; an unknown name is a ConfigError."""
    name = metric.removeprefix("test_")
    if name not in RANKABLE:
        raise ConfigError(
            f"unknown leaderboard metric '{metric}'; choose one of {', '.join(RANKABLE)} "
            "(with or without the test_ prefix; op_* are at the validation-chosen threshold)"
        )
    return S.test_metric(name)


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
    if compare and len(evaluated) > 1:
        compare_with_champion(store, evaluated, key, n_resamples=n_resamples, alpha=alpha)
    return rows


def compare_with_champion(
    store: Any, rows: list[dict[str, Any]], key: str, *, n_resamples: int, alpha: float
) -> None:
    """Annotate rows in place: difference to the champion, its interval, p-values, group."""
    from pneumobench.benchmark.statistics import holm_adjust, paired_comparison

    metric = key.removeprefix("test_")
    champion = rows[0]
    paths_c, y_c, probs_c = reader.read_predictions(store, champion["run_id"])
    seed = int(champion.get("seed") or 0)
    pending: list[tuple[dict[str, Any], float]] = []
    for row in rows[1:]:
        paths, y, probs = reader.read_predictions(store, row["run_id"])
        if paths != paths_c or not np.array_equal(y, y_c):
            row["comparison_note"] = "not the same test images as the champion: not compared"
            continue
        thresholds = (row.get(S.OP_THRESHOLD, 0.5), champion.get(S.OP_THRESHOLD, 0.5))
        cmp = paired_comparison(
            y, probs, probs_c, metric, n_resamples=n_resamples, seed=seed, thresholds=thresholds
        )
        row.update(
            vs_champion_diff=cmp.difference,
            vs_champion_ci_low=cmp.diff_ci[0],
            vs_champion_ci_high=cmp.diff_ci[1],
            p_bootstrap=cmp.p_bootstrap,
            p_mcnemar=cmp.p_mcnemar,
            mcnemar_discordant=[cmp.mcnemar_b, cmp.mcnemar_c],
            p_delong=cmp.p_delong,
        )
        # The test of the ranking metric: DeLong for ROC AUC, the paired bootstrap otherwise.
        pending.append((row, cmp.p_delong if metric == "roc_auc" else cmp.p_bootstrap))
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
    }
    prefixes = (S.TEST_PREFIX, f"{S.BEST_PREFIX}val_", S.OP_THRESHOLD, S.VAL_OP_RECALL, S.N_SEEDS)
    row.update({k: v for k, v in sorted(metrics.items()) if k.startswith(prefixes)})
    return row


# --- rendering ----------------------------------------------------------------------------


def _columns(key: str) -> list[str]:
    others = [S.test_metric(m) for m in LEADERBOARD_METRICS if S.test_metric(m) != key]
    return ["rank", "model", key, "vs_champion", "group", *others, S.N_TEST_EVALUATIONS]


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
        if mean in row and row.get(S.N_SEEDS, 0) > 1:
            text = f"{_fmt(row[mean])}±{_fmt(row.get(std))} (seed {text})"
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
    return [c.removeprefix(S.TEST_PREFIX) for c in columns], [
        [_cell(row, c, key) for c in columns] for row in rows
    ]


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
        return f"{markdown_table(headers, table)}\n\n{legend(key)}"
    raise ValueError(fmt)


def legend(key: str) -> str:
    """How to read the table, in one paragraph."""
    return (
        f"Ranked by {key} (ties: test_f1, test_roc_auc), 95% stratified-bootstrap interval in "
        "brackets. vs_champion: paired difference on the same test images [bootstrap interval], "
        "Holm-adjusted p (DeLong for roc_auc, paired bootstrap otherwise). Group A: cannot be told "
        "apart from the champion; B: significantly worse."
    )


def rich_table(rows: list[dict[str, Any]], metric: str, title: str) -> Any:
    """The leaderboard as a rich table for the terminal: champion starred, group B dimmed."""
    from rich.markup import escape
    from rich.table import Table

    key = normalize_metric(metric)

    table = Table(title=title, caption=escape(legend(key)))
    columns = _columns(key)
    for c in columns:
        table.add_column(
            c.removeprefix(S.TEST_PREFIX),
            justify="left" if c in ("model", "vs_champion") else "right",
        )
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
