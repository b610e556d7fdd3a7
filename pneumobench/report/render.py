"""The leaderboard as people read it: a rich table for the terminal, Markdown, CSV and JSON,
and the legend that says where every number is measured and how sure it is."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.operating_points import RANKED, describe, ranked_name
from pneumobench.report.leaderboard import leaderboard_metric, normalize_metric
from pneumobench.report.rows import LeaderboardRow
from pneumobench.text import markdown_table
from pneumobench.tracking import schema as S

FORMATS = ("table", "json", "csv", "markdown")
RANK, MODEL, VS_CHAMPION, GROUP = "rank", "model", "vs_champion", "group"
HEADERS = {  # short column names that say where each number is measured
    S.ranked_name("recall"): "recall@spec",
    S.ranked_name("specificity"): "specificity@sens",
    S.ranked_name("precision"): "precision@sens",
    S.ranked_name("f1"): "f1@maxF1",
    S.ranked_name("accuracy"): "accuracy@maxAcc",
    S.ranked_name("roc_auc"): "roc_auc",
    S.ranked_name("pr_auc"): "pr_auc",
    S.N_TEST_EVALUATIONS: "test evals",
}


def _columns(key: str) -> list[str]:
    ranked = [S.test_metric(ranked_name(m)) for m in RANKED]
    others = [k for k in ranked if k != key]
    return [RANK, MODEL, key, VS_CHAMPION, GROUP, *others, S.N_TEST_EVALUATIONS]


def _header(column: str) -> str:
    name = column.removeprefix(S.TEST_PREFIX)
    return HEADERS.get(name, HEADERS.get(column, name))


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return "" if value is None else str(value)


def _p(value: float) -> str:
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


def _ranked_cell(row: LeaderboardRow, key: str) -> str:
    m = row.metrics
    low, high = (m.get(name) for name in S.ci_names(key))
    text = _fmt(m.get(key))
    mean, std = S.seed_names(key)
    if mean in m and row.n_seeds > 1:  # the mean's own interval (all seeds)
        low, high = (m.get(name) for name in S.ci_names(mean))
        text = f"{_fmt(m[mean])}±{_fmt(m.get(std))}"
    return f"{text} [{_fmt(low)}, {_fmt(high)}]" if low is not None else text


def _cell(row: LeaderboardRow, column: str, key: str) -> str:
    if not row.evaluated:
        return {RANK: "-", MODEL: row.model, key: str(row.status)}.get(column, "")
    if column == key:
        return _ranked_cell(row, key)
    if column == MODEL:
        return row.model
    if column == GROUP:
        return row.group or ""
    if column == VS_CHAMPION:
        if row.champion:
            return "champion"
        cmp = row.comparison
        if cmp is None:
            return row.comparison_note or ""
        return (
            f"{cmp.vs_champion_diff:+.3f} [{cmp.vs_champion_ci_low:+.3f}, "
            f"{cmp.vs_champion_ci_high:+.3f}] {_p(cmp.p_holm)}"
        )
    if column == RANK:
        return "" if row.rank is None else str(row.rank)
    if column == S.N_TEST_EVALUATIONS:  # a count
        value = row.metrics.get(column)
        return "" if value is None else str(int(value))
    return _fmt(row.metrics.get(column))


def table_cells(rows: list[LeaderboardRow], key: str) -> tuple[list[str], list[list[str]]]:
    """Column headers and the text of every cell, as the table, Markdown and report show them."""
    columns = _columns(key)
    return [_header(c) for c in columns], [[_cell(row, c, key) for c in columns] for row in rows]


def render(rows: list[LeaderboardRow], fmt: str, metric: str) -> str:
    """The leaderboard as ``json``, ``csv`` or ``markdown`` text (``table`` is :func:`rich_table`)."""
    key = normalize_metric(metric)
    records = [row.as_dict() for row in rows]
    if fmt == "json":
        return json.dumps(records, indent=2, default=str)
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
            GROUP,
            *columns[5:],
            "status",
            "run_id",
            "champion",
        ]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    if fmt == "markdown":
        headers, table = table_cells(rows, key)
        for row, cells in zip(rows, table, strict=True):
            if row.champion:
                cells[1] = f"**{cells[1]}**"
        return f"{markdown_table(headers, table)}\n\n{legend(key, rows)}"
    raise ValueError(fmt)


def legend(key: str, rows: list[LeaderboardRow] | None = None) -> str:
    """How to read the table, in one paragraph: where each number is measured, how sure it is."""
    targets = OperatingPointsConfig()
    first = rows[0] if rows else None
    sensitivity = float((first and first.op_target_sensitivity) or targets.sensitivity)
    specificity = float((first and first.op_target_specificity) or targets.specificity)
    unit = first.bootstrap_unit if first else S.BOOTSTRAP_IMAGE
    resampled = (
        "test patients resampled (stratified by class)"
        if unit == S.BOOTSTRAP_PATIENT
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


def rich_table(rows: list[LeaderboardRow], metric: str, title: str) -> Any:
    """The leaderboard as a rich table for the terminal: champion starred, group B dimmed."""
    from rich.markup import escape
    from rich.table import Table

    key = normalize_metric(metric)
    table = Table(title=title, caption=escape(legend(key, rows)))
    columns = _columns(key)
    for c in columns:
        table.add_column(_header(c), justify="left" if c in (MODEL, VS_CHAMPION) else "right")
    for row in rows:
        cells = [_cell(row, c, key) for c in columns]
        style = None
        if row.champion:
            cells[1] = f"★ {cells[1]}"
            style = "bold green"
        elif not row.evaluated:
            style = "red"
        elif row.significantly_worse:
            style = "dim"
        table.add_row(*cells, style=style)
    return table
