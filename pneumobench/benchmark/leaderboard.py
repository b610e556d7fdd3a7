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
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pneumobench.benchmark import tracking as T
from pneumobench.benchmark.metrics import LEADERBOARD_METRICS
from pneumobench.errors import ConfigError, TrackingError

RANKABLE = (*LEADERBOARD_METRICS, "op_recall", "op_specificity")
TIEBREAK = ("test_f1", "test_roc_auc")
FORMATS = ("table", "json", "csv", "markdown")
PREDICTIONS = "predictions/test_predictions.csv"


def normalize_metric(metric: str) -> str:
    name = metric.removeprefix("test_")
    if name not in RANKABLE:
        raise ConfigError(
            f"unknown leaderboard metric '{metric}'; choose one of {', '.join(RANKABLE)} "
            "(with or without the test_ prefix; op_* are at the validation-chosen threshold)"
        )
    return f"test_{name}"


def _check_store(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise TrackingError(
                f"no MLflow store at {path.resolve()}: run `pneumobench run experiments.yaml` in "
                "this folder first, or pass --tracking-uri"
            )


def rank_value(row: dict[str, Any], key: str) -> float:
    """With repeated seeds the mean ranks; otherwise the single final model's value."""
    value = row.get(f"{key}_mean", row.get(key, math.nan))
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
    import mlflow

    key = normalize_metric(metric)
    _check_store(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments() if e.name != "Default"]
        raise TrackingError(
            f"no MLflow experiment named '{experiment}' in {tracking_uri}; "
            f"found: {', '.join(names) or 'none'} (use --experiment)"
        )
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{T.ROLE}` = 'model'",
        order_by=["attributes.start_time DESC"],
    )
    latest: dict[str, Any] = {}
    for run in runs:
        label = run.data.tags.get(T.LABEL, run.info.run_name)
        state = run.data.tags.get(T.FINAL)
        if state not in ("done", "failed"):
            continue
        current = latest.get(label)
        if current is None or (current.data.tags.get(T.FINAL) != "done" and state == "done"):
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
        compare_with_champion(client, evaluated, key, n_resamples=n_resamples, alpha=alpha)
    return rows


def read_predictions(client: Any, run_id: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(paths, y_true, probabilities) from a final model's logged predictions CSV."""
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, PREDICTIONS, tmp)
        with open(local, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            rows = list(reader)
    prob_columns = [i for i, name in enumerate(header) if name.startswith("p_")]
    paths = [r[0] for r in rows]
    y = np.array([int(r[1]) for r in rows])
    probs = np.array([[float(r[i]) for i in prob_columns] for r in rows])
    return paths, y, probs


def compare_with_champion(
    client: Any, rows: list[dict[str, Any]], key: str, *, n_resamples: int, alpha: float
) -> None:
    """Annotate rows in place: difference to the champion, its interval, p-values, group."""
    from pneumobench.benchmark.statistics import holm_adjust, paired_comparison

    metric = key.removeprefix("test_")
    champion = rows[0]
    paths_c, y_c, probs_c = read_predictions(client, champion["run_id"])
    seed = int(champion.get("seed") or 0)
    pending: list[tuple[dict[str, Any], float]] = []
    for row in rows[1:]:
        paths, y, probs = read_predictions(client, row["run_id"])
        if paths != paths_c or not np.array_equal(y, y_c):
            row["comparison_note"] = "not the same test images as the champion: not compared"
            continue
        thresholds = (row.get("op_threshold", 0.5), champion.get("op_threshold", 0.5))
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
        "model": tags.get(T.LABEL, run.info.run_name),
        "registry_name": tags.get("model"),
        "status": "evaluated" if tags.get(T.FINAL) == "done" else "failed",
        "run_id": run.info.run_id,
        "family": tags.get("family"),
        "num_params": int(tags["num_params"]) if tags.get("num_params", "").isdigit() else None,
        "pretrained_source": tags.get("pretrained_source"),
        "image_size": tags.get("image_size"),
        "dataset_digest": tags.get("dataset_digest"),
        "seed": tags.get("seed"),
        "fail_reason": tags.get("pneumobench.fail_reason"),
    }
    prefixes = ("test_", "best_val_", "op_threshold", "val_op_", "n_seeds")
    row.update({k: v for k, v in sorted(metrics.items()) if k.startswith(prefixes)})
    return row


# --- rendering ----------------------------------------------------------------------------


def _columns(key: str) -> list[str]:
    others = [f"test_{m}" for m in LEADERBOARD_METRICS if f"test_{m}" != key]
    return ["rank", "model", key, "vs_champion", "group", *others]


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
        low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
        text = _fmt(row.get(key))
        if f"{key}_mean" in row and row.get("n_seeds", 0) > 1:
            text = f"{_fmt(row[f'{key}_mean'])}±{_fmt(row.get(f'{key}_std'))} (seed {text})"
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
    if column == "rank":
        return _fmt(row.get("rank"))
    return _fmt(row.get(column))


def table_cells(rows: list[dict[str, Any]], key: str) -> tuple[list[str], list[list[str]]]:
    """Column headers and the text of every cell, as the table, Markdown and report show them."""
    columns = _columns(key)
    return [c.removeprefix("test_") for c in columns], [
        [_cell(row, c, key) for c in columns] for row in rows
    ]


def render(rows: list[dict[str, Any]], fmt: str, metric: str) -> str:
    key = normalize_metric(metric)
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    columns = _columns(key)
    if fmt == "csv":
        fields = [
            *columns[:3],
            f"{key}_ci_low",
            f"{key}_ci_high",
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
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row, cells in zip(rows, table, strict=True):
            if row["champion"]:
                cells[1] = f"**{cells[1]}**"
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(legend(key))
        return "\n".join(lines)
    raise ValueError(fmt)


def legend(key: str) -> str:
    return (
        f"Ranked by {key} (ties: test_f1, test_roc_auc), 95% stratified-bootstrap interval in "
        "brackets. vs_champion: paired difference on the same test images [bootstrap interval], "
        "Holm-adjusted p (DeLong for roc_auc, paired bootstrap otherwise). Group A: cannot be told "
        "apart from the champion; B: significantly worse."
    )


def rich_table(rows: list[dict[str, Any]], metric: str, title: str) -> Any:
    from rich.table import Table

    key = normalize_metric(metric)
    from rich.markup import escape

    table = Table(title=title, caption=escape(legend(key)))
    columns = _columns(key)
    for c in columns:
        table.add_column(
            c.removeprefix("test_"), justify="left" if c in ("model", "vs_champion") else "right"
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
