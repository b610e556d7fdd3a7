"""``pneumobench promote``: point the ``champion`` alias at the leaderboard's champion."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rich.console import Console

from pneumobench.commands.options import add_metric_option, add_store_options

if TYPE_CHECKING:
    from pneumobench.config.sections import EvaluationConfig


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``promote`` and its options."""
    parser = sub.add_parser(
        "promote",
        help="move the registered model's 'champion' alias to the leaderboard's champion",
    )
    add_metric_option(parser)
    add_store_options(parser)
    return parser


def main(args: argparse.Namespace, console: Console) -> int:
    """Rank, then move the alias; 1 when no model is evaluated or registered."""
    from pneumobench.commands.store import resolve_store
    from pneumobench.report.leaderboard import load_leaderboard, normalize_metric

    normalize_metric(args.metric)
    store = resolve_store(args)
    rows = load_leaderboard(store.name, args.metric, store.uri, store.evaluation, compare=False)
    return promote_champion(store.name, store.uri, rows, args.metric, console, store.evaluation)


def promote_champion(
    name: str,
    uri: str,
    rows: list,
    metric: str,
    console: Console,
    evaluation: EvaluationConfig | None = None,
) -> int:
    """Move ``champion`` to the top row that has a registered model (ensembles included), or
    (``evaluation.champion: validation``) to the best such row on validation; say what
    happened, and which row it is when it is not the top row. 0 when set."""
    from pneumobench.report.leaderboard import best_on_validation, normalize_metric, targets_of
    from pneumobench.tracking import models as tracked

    evaluated = [r for r in rows if r.evaluated]
    if not evaluated:
        console.print(f"[yellow]no evaluated model in {name}: no champion to promote[/]")
        return 1
    tracked.connect(uri)
    deployable = [r for r in evaluated if tracked.version_of_run(name, r.run_id) is not None]
    top = deployable[0] if deployable else evaluated[0]
    if evaluation is not None and evaluation.champion == "validation":
        targets = targets_of(rows, evaluation.operating_points)
        chosen = best_on_validation(uri, deployable or rows, normalize_metric(metric), targets)
        if chosen is not None:
            top = chosen
            console.print(
                f"champion chosen on validation by {metric}: {top.model} (its test numbers "
                "are an unbiased estimate; the table's top row was selected on test)"
            )
    elif top is not evaluated[0]:
        console.print(
            f"[yellow]the top row by {metric}, {evaluated[0].model}, has no registered model[/] "
            f"(its reason was printed when it was evaluated): the champion alias, and so predict, "
            f"export and serving, go to the best deployable row, {top.model}"
        )
    previous, new = tracked.set_champion(name, top.run_id, metric)
    registered = tracked.registered_name(name)
    if new is None:
        console.print(
            f"[yellow]{top.model} (champion by {metric}) has no registered version[/]: it was "
            "evaluated before models were registered; `pneumobench run --force` registers it"
        )
        return 1
    _log_card(uri, rows, top, new, metric)
    if previous is not None and previous.version == new.version:
        console.print(
            f"champion: {registered}@champion stays at version {new.version} ({top.model})"
        )
    else:
        moved = f", moved from version {previous.version} ({previous.label})" if previous else ""
        console.print(
            f"champion: [bold]{registered}@champion[/] -> version {new.version} "
            f"({top.model}, best by {metric}){moved}"
        )
    return 0


def _log_card(uri: str, rows: list, top: Any, version: Any, metric: str) -> None:
    """The champion's model card, logged with its registered version."""
    from pneumobench.report.leaderboard import test_looks
    from pneumobench.report.model_card import model_card
    from pneumobench.tracking import models as tracked
    from pneumobench.tracking.store import client

    run = client(uri).get_run(top.run_id)
    card = model_card(top, run, version.name, version.version, metric, test_looks(uri, rows))
    tracked.log_model_card(version, card)
