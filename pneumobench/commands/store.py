"""Which experiment, in which store, judged how: resolved once for every command that reads
results (leaderboard, report, promote, predict, export)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pneumobench.commands.options import DEFAULT_CONFIG
from pneumobench.errors import ConfigError

if TYPE_CHECKING:  # pydantic loads with the config, not for `pneumobench --help`
    from pneumobench.config.schema import ExperimentConfig
    from pneumobench.config.sections import EvaluationConfig


class ResolvedStore(NamedTuple):
    """Where an experiment's results live and how they are judged."""

    name: str | None  # None only when the caller does not need one (a --run-id)
    uri: str
    storage: str | None  # Optuna storage URL
    evaluation: EvaluationConfig  # how results are judged (``--resamples`` applied)
    config: ExperimentConfig | None  # the config read, if any (plugins, class names)


def resolve_store(
    args: argparse.Namespace, *, needs_storage: bool = False, needs_name: bool = True
) -> ResolvedStore:
    """Flags first, then the config (``--config``, else ``experiments.yaml`` here), then the
    config schema's defaults. Every command takes alpha and the resample count from the same
    place as ``pneumobench run``'s own leaderboard, so they never disagree on a group."""
    from pneumobench.config.fields import DEFAULT_TRACKING_URI
    from pneumobench.config.sections import EvaluationConfig
    from pneumobench.tracking.urls import absolute_sqlite

    name, uri = args.experiment, args.tracking_uri
    storage = getattr(args, "storage", None)
    evaluation = EvaluationConfig()
    config = None
    config_path = args.config or (Path(DEFAULT_CONFIG) if Path(DEFAULT_CONFIG).is_file() else None)
    wants_storage = needs_storage and storage is None
    if config_path is not None and (args.config or not (name and uri) or wants_storage):
        from pneumobench.config.loading import load_config

        config = load_config(config_path)
        name = name or config.name
        uri = uri or config.tracking.uri
        storage = storage or config.search.storage
        evaluation = config.evaluation
    if name is None and needs_name:
        raise ConfigError(
            f"no --experiment given and no {DEFAULT_CONFIG} here to read its name from"
        )
    resamples = getattr(args, "resamples", None)
    if resamples:
        evaluation = evaluation.model_copy(update={"bootstrap_resamples": resamples})
    return ResolvedStore(
        name,
        absolute_sqlite(uri or DEFAULT_TRACKING_URI),
        absolute_sqlite(storage) if storage else None,
        evaluation,
        config,
    )
