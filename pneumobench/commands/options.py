"""The options several sub-commands share, declared once with one help text each."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONFIG = "experiments.yaml"  # read from the current folder when --config is not given
DEFAULT_METRIC = "recall"


def resamples(text: str) -> int:
    """A bootstrap resample count: an integer of at least 100."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 100:
        raise argparse.ArgumentTypeError(f"{value}: use at least 100 resamples")
    return value


def add_store_options(
    parser: argparse.ArgumentParser, *, storage: bool = False, resample: bool = False
) -> None:
    """``--experiment``, ``--tracking-uri`` and ``--config`` (with ``--storage`` and
    ``--resamples`` where the command reads them): where an experiment's results live."""
    parser.add_argument(
        "--experiment",
        help=f"MLflow experiment (default: the name in the config, {DEFAULT_CONFIG})",
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: the config's)")
    if storage:
        parser.add_argument("--storage", help="Optuna storage URL (default: the config's)")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"experiment YAML to read the name, URIs and plugins from (default: {DEFAULT_CONFIG} "
        "in the current folder, if there is one)",
    )
    if resample:
        parser.add_argument(
            "--resamples",
            type=resamples,
            default=None,
            help="bootstrap resamples of the intervals and paired comparisons (default: the "
            "config's evaluation.bootstrap_resamples; at least 100)",
        )


def add_metric_option(parser: argparse.ArgumentParser) -> None:
    """``--metric``: what the leaderboard ranks by."""
    parser.add_argument(
        "--metric",
        default=DEFAULT_METRIC,
        help="recall (at the validation-chosen specificity), specificity or precision (at the "
        "validation-chosen sensitivity), f1 or accuracy (at their best validation threshold), "
        "roc_auc, pr_auc (with or without test_)",
    )
