"""One Optuna study per (experiment, model): seeded TPE, pruning on the validation objective,
persistent storage, so re-running the same command continues where it stopped."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from pneumobench.config import CategoricalParam, ExperimentConfig, FloatParam, IntParam
from pneumobench.errors import TrackingError

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)


def study_name(experiment: str, label: str) -> str:
    return f"{experiment}/{label}"


def make_sampler(config: ExperimentConfig) -> optuna.samplers.BaseSampler:
    if config.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    return optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=5)


def make_pruner(config: ExperimentConfig, max_epochs: int) -> optuna.pruners.BasePruner:
    if config.search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if config.search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs)
    return optuna.pruners.NopPruner()


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats: a trial whose process died is failed and retried."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=30,
                grace_period=90,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=2
                ),
            )
    except Exception as exc:
        raise TrackingError(f"cannot open the Optuna storage {url}: {exc}") from None


def open_study(config: ExperimentConfig, label: str, max_epochs: int) -> optuna.Study:
    return optuna.create_study(
        study_name=study_name(config.name, label),
        storage=make_storage(config.search.storage),
        direction=config.search.direction,
        sampler=make_sampler(config),
        pruner=make_pruner(config, max_epochs),
        load_if_exists=True,
    )


def counted_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def suggest(trial: optuna.Trial, space: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, FloatParam):
            params[name] = trial.suggest_float(
                name, spec.low, spec.high, log=spec.log, step=spec.step
            )
        elif isinstance(spec, IntParam):
            params[name] = trial.suggest_int(
                name, spec.low, spec.high, log=spec.log, step=spec.step
            )
        elif isinstance(spec, CategoricalParam):
            params[name] = trial.suggest_categorical(name, spec.choices)
    return params


def best_value(study: optuna.Study) -> float | None:
    try:
        return study.best_value
    except ValueError:  # no complete trial yet
        return None
