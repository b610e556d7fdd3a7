"""The ranking: one row per model (its latest final evaluation), read through MLflow's search API.

Nothing here imports torch: reading a leaderboard takes seconds, not a model zoo.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from pneumobench.benchmark import tracking as T
from pneumobench.benchmark.metrics import LEADERBOARD_METRICS
from pneumobench.errors import ConfigError, TrackingError

TIEBREAK = ("test_f1", "test_roc_auc")
FORMATS = ("table", "json", "csv", "markdown")


def normalize_metric(metric: str) -> str:
    name = metric.removeprefix("test_")
    if name not in LEADERBOARD_METRICS:
        raise ConfigError(
            f"unknown leaderboard metric '{metric}'; choose one of {', '.join(LEADERBOARD_METRICS)} "
            "(with or without the test_ prefix)"
        )
    return f"test_{name}"


def _check_store(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        path = path if path.is_absolute() or uri.startswith("sqlite:////") else path.resolve()
        if not path.is_file():
            raise TrackingError(
                f"no MLflow store at {path.resolve()}: run `pneumobench run experiments.yaml` in "
                "this folder first, or pass --tracking-uri"
            )


def load_leaderboard(
    experiment: str, metric: str = "recall", tracking_uri: str = "sqlite:///mlflow.db"
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
        values = [row.get(k, math.nan) for k in (key, *TIEBREAK)]
        return (
            row["status"] != "evaluated",
            *[-v if not math.isnan(v) else math.inf for v in values],
        )

    rows.sort(key=sort_key)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if row["status"] == "evaluated" else None
        row["champion"] = rank == 1 and row["status"] == "evaluated"
    return rows


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
    }
    row.update({k: v for k, v in sorted(metrics.items()) if k.startswith(("test_", "best_val_"))})
    return row


def render(rows: list[dict[str, Any]], fmt: str, metric: str) -> str:
    key = normalize_metric(metric)
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    columns = [
        "rank",
        "model",
        key,
        *[f"test_{m}" for m in LEADERBOARD_METRICS if f"test_{m}" != key],
    ]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=[*columns, "status", "run_id", "champion"], extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            cells = [_cell(row, c) for c in columns]
            if row["champion"]:
                cells[1] = f"**{cells[1]}** (champion)"
            if row["status"] != "evaluated":
                cells[2] = "failed"
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)
    raise ValueError(fmt)


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if column == "rank":
        return "-" if value is None else str(value)
    if row["status"] != "evaluated" and column.startswith("test_"):
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return "" if value is None else str(value)


def rich_table(rows: list[dict[str, Any]], metric: str, title: str) -> Any:
    from rich.table import Table

    key = normalize_metric(metric)
    table = Table(
        title=title,
        caption=f"ranked by {key}, ties by test_f1 then test_roc_auc; "
        "test set touched once per model",
    )
    columns = [
        "rank",
        "model",
        key,
        *[f"test_{m}" for m in LEADERBOARD_METRICS if f"test_{m}" != key],
    ]
    for c in columns:
        table.add_column(c.removeprefix("test_"), justify="left" if c == "model" else "right")
    for row in rows:
        cells = [_cell(row, c) for c in columns]
        style = None
        if row["champion"]:
            cells[1] = f"★ {cells[1]}"
            style = "bold green"
        if row["status"] != "evaluated":
            cells[2] = "failed"
            style = "red"
        table.add_row(*cells, style=style)
    return table
