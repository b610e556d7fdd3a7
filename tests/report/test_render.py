"""Tests of pneumobench/report/render.py: both blocks, readable in a 100-column terminal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from pneumobench.config.sections import EvaluationConfig
from pneumobench.report.leaderboard import load_leaderboard, targets_of
from pneumobench.report.render import render, rich_table


def test_both_blocks_fit_100_columns_without_a_cut_name_or_a_wrapped_cell(
    finished: Path,
) -> None:
    uri = f"sqlite:///{finished / 'mlflow.db'}"
    rows = load_leaderboard("tiny", "recall", uri, EvaluationConfig(bootstrap_resamples=200))
    targets = targets_of(rows, EvaluationConfig().operating_points)
    console = Console(width=100, record=True, color_system=None)
    console.print(rich_table(rows, "recall", "tiny leaderboard", targets, ["a note"]))
    text = console.export_text()
    tables = text.split("Ranked by")[0]  # the legend below wraps as a paragraph
    assert "…" not in tables
    assert max(len(line) for line in text.splitlines()) <= 100
    for row in rows:
        assert row.model in tables  # every name whole
        lines = [line for line in tables.splitlines() if row.model in line]
        assert len(lines) == 2  # one line in each block, no wrapped cell
    assert "the deployed operating point" in tables and "chance (random scorer)" in tables
    markdown = render(rows, "markdown", "recall", targets)
    assert "| # | model |" in markdown and "| model | thr |" in markdown  # both blocks
