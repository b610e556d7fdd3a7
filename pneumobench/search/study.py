"""One Optuna study per (experiment, model): seeded TPE, pruning on the validation objective,
persistent storage, so re-running the same command continues where it stopped."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from pneumobench.config import CategoricalParam, ExperimentConfig, FloatParam, IntParam
from pneumobench.errors import TrackingError
from pneumobench.locks import initializing
from pneumobench.text import redact

if TYPE_CHECKING:
    from pneumobench.config.plan import ModelPlan

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
CONNECT_TIMEOUT = 10  # seconds to reach a database server before the run stops with an error
# One kept connection per worker process, a second only while the heartbeat thread and the main
# thread write at the same moment: 64 workers stay under PostgreSQL's default max_connections
# (100; measured by benchmarks/many_workers.py, figures in docs/distributed.md).
POOL_SIZE, POOL_OVERFLOW = 1, 1


def make_sampler(config: ExperimentConfig, n_trials: int = 10) -> optuna.samplers.BaseSampler:
    """TPE (or random search) as ``search.sampler`` says, seeded per trial (see below).

    TPE starts with random trials before it models anything; its default of 10 (Optuna) or 5
    would make a 3- to 6-trial budget pure random search. The start is scaled to the budget:
    half of it, at least 2 and at most 10 (3 trials: 2 random, then 1 by TPE; 6: 3 and 3).
    """
    if config.search.sampler == "random":
        return TrialSeededSampler(
            lambda seed: optuna.samplers.RandomSampler(seed=seed), config.seed
        )
    startup = startup_trials(n_trials)
    return TrialSeededSampler(
        lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup), config.seed
    )


def startup_trials(n_trials: int) -> int:
    """Random trials before TPE takes over, for a budget of ``n_trials``."""
    return max(2, min(10, n_trials // 2))


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` in an experiment seeded with ``seed``."""
    return (seed * 1_000_003 + number * 7_919 + 17) % (2**31 - 1)


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """A sampler whose randomness depends on the trial, not on the process.

    A sampler seeded once per process repeats itself: a resumed search, or a second worker on
    the same study, would draw the same start-up samples as the first process did. Here each
    trial gets a fresh inner sampler seeded with ``trial_seed(seed, trial.number)``. The inner
    samplers keep no state between trials (TPE reads the history from the storage), so a fixed
    seed still gives the same sequence for the same order of trials, and no two trial numbers
    share a random stream.
    """

    def __init__(self, make: Any, seed: int) -> None:
        self._make, self._seed = make, seed
        self._inner: dict[int, optuna.samplers.BaseSampler] = {}

    def _for(self, trial: Any) -> optuna.samplers.BaseSampler:
        if trial.number not in self._inner:
            self._inner[trial.number] = self._make(trial_seed(self._seed, trial.number))
        return self._inner[trial.number]

    def infer_relative_search_space(self, study: optuna.Study, trial: Any) -> dict[str, Any]:
        """Delegated to this trial's own sampler."""
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: Any, search_space: dict[str, Any]
    ) -> dict[str, Any]:
        """Delegated to this trial's own sampler."""
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: Any, param_name: str, param_distribution: Any
    ) -> Any:
        """Delegated to this trial's own sampler."""
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: Any) -> None:
        """Creates (or finds) this trial's sampler, seeded by its number."""
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: Any, state: TrialState, values: Any) -> None:
        """Lets this trial's sampler finish, then forgets it."""
        inner = self._inner.pop(trial.number, None) or self._make(
            trial_seed(self._seed, trial.number)
        )
        inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to reseed: each trial's seed is fixed by its number, by design."""


def make_pruner(
    config: ExperimentConfig, max_epochs: int, frozen_epochs: int = 0
) -> optuna.pruners.BasePruner:
    """The ``search.pruner``: median, hyperband over epochs, or none.

    Never during a pretrained backbone's ``frozen_epochs``: a trial is judged only once its
    backbone has trained (``backbone_lr_mult`` has had an effect), at the end of the first
    unfrozen epoch at the earliest.
    """
    if config.search.pruner == "median":
        # Optuna may prune at any step >= n_warmup_steps: epochs 1..frozen_epochs are safe.
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=frozen_epochs + 1)
    if config.search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min(max_epochs, frozen_epochs + 1), max_resource=max_epochs
        )
    return optuna.pruners.NopPruner()


def make_storage(
    url: str, heartbeat_interval: int = 30, grace_period: int = 90
) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats: a trial whose worker died is failed and retried with the
    same parameters by whichever worker asks for a trial next."""
    engine_kwargs: dict = {}
    if url.startswith("sqlite"):  # several processes on one file wait for each other's writes
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif url.startswith(("postgresql", "mysql")):  # a server that never answers is an error
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
        engine_kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=120)
    error: Exception | None = None
    for attempt in range(3):  # workers starting together race to create the tables
        try:
            with warnings.catch_warnings(), initializing(url):
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=2
                    ),
                )
        except Exception as exc:
            error = exc
            if any(
                sign in str(exc)
                for sign in (
                    "could not connect",
                    "unable to open",
                    "Connection refused",
                    "timeout expired",
                    "timed out",
                )
            ):
                break
            time.sleep(0.5 * (attempt + 1))
    raise TrackingError(
        f"cannot open the Optuna storage {redact(url)}: {redact(str(error))}"
    ) from None


_storages: dict[tuple[str, int, int], optuna.storages.RDBStorage] = {}


def storage_for(config: ExperimentConfig) -> optuna.storages.RDBStorage:
    """One storage (one connection pool) per URL and heartbeat setting in a process."""
    search = config.search
    key = (search.storage, search.heartbeat_interval, search.grace_period)
    if key not in _storages:
        _storages[key] = make_storage(*key)
    return _storages[key]


def open_study(config: ExperimentConfig, plan: ModelPlan, pretrained: bool = False) -> optuna.Study:
    """The plan's study, created on first use and loaded (with its trials) afterwards.
    ``pretrained``: the model's backbone is frozen for ``freeze_epochs`` (no pruning then)."""
    frozen = plan.protocol.freeze_epochs if pretrained else 0
    study = optuna.create_study(
        study_name=plan.study_name,
        storage=storage_for(config),
        direction=plan.direction,
        sampler=make_sampler(config, plan.n_trials),
        pruner=make_pruner(config, plan.protocol.max_epochs, frozen),
        load_if_exists=True,
    )
    if study.metric_names != [plan.objective]:  # optuna-dashboard then says val_f1, not
        with warnings.catch_warnings():  # "Objective 0" (the API is experimental)
            warnings.simplefilter("ignore")
            study.set_metric_names([plan.objective])
    return study


def counted_trials(study: optuna.Study) -> int:
    """Finished trials (complete or pruned): what ``n_trials`` counts."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def suggest(trial: optuna.Trial, space: dict[str, Any]) -> dict[str, Any]:
    """Sample every parameter of the search space for ``trial``."""
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


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial; among equal values the lowest trial number.

    Optuna's own ``study.best_trial`` leaves ties to the database's row order, which PostgreSQL
    does not keep: two workers could then disagree on which checkpoint to keep.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return min(complete, key=lambda t: (sign * float(t.value), t.number))


def beats(value: float, number: int, best: optuna.trial.FrozenTrial | None, direction: str) -> bool:
    """Whether trial ``number`` with ``value`` would be ``best_trial`` over ``best``."""
    if best is None or best.value is None:
        return True
    if value == best.value:
        return number < best.number
    return value > best.value if direction == "maximize" else value < best.value
