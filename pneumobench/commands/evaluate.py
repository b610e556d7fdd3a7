"""``pneumobench evaluate CONFIG --test-data PATH``: every final model and ensemble of an
experiment on an external test set, once, at its deployed thresholds."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from pneumobench.text import command


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``evaluate`` and its options."""
    parser = sub.add_parser(
        "evaluate",
        help="evaluate every final model of an experiment on an external test set",
        description="Run every final model and ensemble of CONFIG's experiment on a second test "
        "set (a folder with NORMAL/ and PNEUMONIA/, a Kaggle-layout root with test/, or a "
        "MedMNIST-style .npz), decoded as in training, at each model's deployed thresholds. "
        "Logged as its own evaluation per model; the leaderboard and report show it beside "
        "the internal test.",
    )
    parser.add_argument("config", type=Path, help="the experiment YAML the models were run with")
    parser.add_argument("--test-data", type=Path, required=True, help="folder or .npz")
    parser.add_argument("--name", help="the external set's name (default: the folder's name)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (overrides tracking.uri)")
    parser.add_argument(
        "--force", action="store_true", help="evaluate again (counted as one more look)"
    )
    return parser


def main(args: argparse.Namespace, console: Console) -> int:
    """Evaluate; 1 when no model could be evaluated."""
    from pneumobench.config.loading import load_config
    from pneumobench.tracking.urls import absolute_sqlite, probe

    overrides = [f"tracking.uri={args.tracking_uri}"] if args.tracking_uri else []
    config = load_config(args.config, overrides)
    uri = absolute_sqlite(config.tracking.uri)
    probe(uri)
    from pneumobench.benchmark.external import evaluate_external

    external, outcomes = evaluate_external(
        config, uri, args.test_data, args.name, console, force=args.force
    )
    done = [o for o in outcomes if o.result is not None]
    console.print(
        f"{len(done)} of {len(outcomes)} model(s) evaluated on {external.name}; see "
        f"`{command()} leaderboard --config {args.config}` and `{command()} report`"
    )
    return 0 if done or any("already evaluated" in (o.skipped or "") for o in outcomes) else 1
