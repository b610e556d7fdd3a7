"""``pneumobench leaderboard``: the evaluated models of an experiment, ranked."""

from __future__ import annotations

import argparse

from rich.console import Console

from pneumobench.commands.options import add_metric_option, add_store_options


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``leaderboard`` and its options."""
    from pneumobench.report.formats import FORMATS

    board = sub.add_parser("leaderboard", help="rank the evaluated models of an experiment")
    add_metric_option(board)
    board.add_argument("--format", default="table", choices=FORMATS)
    board.add_argument(
        "--wide", action="store_true", help="every column (the default fits 100 columns)"
    )
    add_store_options(board, resample=True)
    return board


def main(args: argparse.Namespace, console: Console) -> int:
    """Print the leaderboard; 1 when no model has a final evaluation."""
    from pneumobench.commands.store import resolve_store
    from pneumobench.report.leaderboard import (
        champion_note,
        load_leaderboard,
        normalize_metric,
        targets_of,
        test_looks,
    )
    from pneumobench.report.render import render, rich_table, store_notes

    normalize_metric(args.metric)  # a bad metric fails before anything is opened
    store = resolve_store(args)
    rows = load_leaderboard(store.name, args.metric, store.uri, store.evaluation)
    if not any(r.evaluated for r in rows):
        nothing_evaluated(store.name or "", [r.model for r in rows])
        if not rows:
            return 1
    targets = targets_of(rows, store.evaluation.operating_points)
    notes = store_notes(rows, test_looks(store.uri, rows))
    chosen = champion_note(store.uri, rows, normalize_metric(args.metric), store.evaluation)
    notes += [chosen] if chosen else []
    if args.format == "table":
        title = f"{store.name} leaderboard"
        console.print(rich_table(rows, args.metric, title, targets, notes, wide=args.wide))
    else:
        print(render(rows, args.format, args.metric, targets, notes))
    return 0 if any(r.evaluated for r in rows) else 1


def nothing_evaluated(name: str, failed: list[str]) -> None:
    """Say on stderr that an experiment has no final evaluation, and what to do."""
    err = Console(stderr=True, highlight=False)
    err.print(
        f"[yellow]no model of experiment '{name}' has a final evaluation[/]"
        + (f" (failed: {', '.join(failed)}; see their fail_reason tags)" if failed else "")
        + ". Run `pneumobench run CONFIG` first; `mlflow ui` shows what was logged."
    )
