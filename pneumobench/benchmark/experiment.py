"""``pneumobench run``: every configured model through search, then one test evaluation each.

Re-running the same command resumes: studies keep their finished trials, a model's parent run is
found again through its claim, and a model whose final evaluation is logged is not evaluated again.
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import torch
from rich.console import Console

from pneumobench import profile
from pneumobench.benchmark.ensemble import build_ensembles
from pneumobench.benchmark.model_run import ExperimentContext, ModelOutcome, ModelRun, Outcome
from pneumobench.config import ExperimentConfig
from pneumobench.config.plan import ModelPlan, plan_models
from pneumobench.data import PreparedData, prepare_data
from pneumobench.errors import ConfigError, ModelError
from pneumobench.progress import make_progress
from pneumobench.registry import check_model_name
from pneumobench.registry.plugins import load_plugins
from pneumobench.search.coordination import Claims
from pneumobench.search.study import storage_for
from pneumobench.tracking.reader import test_set_looks
from pneumobench.tracking.store import client, open_experiment
from pneumobench.train.device import resolve_device
from pneumobench.train.starting_point import StartingPoint


def run_experiment(
    config: ExperimentConfig, *, force: bool = False, console: Console | None = None
) -> list[ModelOutcome]:
    """Search and evaluate every model of ``config``, in order; one outcome per model.

    Everything that can be checked without training is checked first: model names, the Optuna
    storage and the MLflow store, then the data. ``force`` evaluates on test again even where a
    final evaluation is logged.
    """
    console = console or Console()
    profile.forget_models()
    # Optuna logs every failed trial with its traceback (a Ctrl-C too); pneumobench reports
    # trials itself, in one line each.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with profile.stage("setup"):
        device, plans, claims, experiment_id, starts = _set_up(config)
    started = time.perf_counter()
    with profile.stage("data"):
        data = prepare_data(config)
    _print_data(console, config, data, str(device), time.perf_counter() - started)
    outcomes = []
    with make_progress(console) as progress, _long_lived_frozen():
        progress.run_started([(p.label, p.n_trials, p.protocol.max_epochs) for p in plans])
        ctx = ExperimentContext(
            config, data, experiment_id, device, claims, console, progress, force
        )
        for plan, start in zip(plans, starts, strict=True):
            outcomes.append(ModelRun(plan, ctx, start).run())
        if all(o.status != Outcome.FAILED for o in outcomes):
            with profile.stage("ensembles"):
                build_ensembles(config, data, experiment_id, console, force)
    return outcomes


@contextlib.contextmanager
def _long_lived_frozen() -> Iterator[None]:
    """Everything alive when the models start (the libraries, the starting weights, the data)
    lives as long as the run: frozen out of the cyclic garbage collector, the full collection
    after every trial (Optuna's ``gc_after_trial``, which frees a trial's tensors on a GPU) no
    longer walks it (its cost: docs/performance.md). Unfrozen when the run ends, so a process
    that runs several experiments still collects the earlier ones' cycles."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _set_up(
    config: ExperimentConfig,
) -> tuple[torch.device, list[ModelPlan], Claims, str, list[StartingPoint]]:
    """Everything that can be checked without training, checked first: the device, model
    names, the Optuna storage and the MLflow store; every model built."""
    device = resolve_device(config.device)
    load_plugins(config.plugins, config.base_dir)  # before any model name is resolved
    plans = plan_models(config)
    for i, plan in enumerate(plans):  # fail on a misspelt model before anything is created
        try:
            check_model_name(plan.registry_name)
        except ModelError as exc:
            where = config.source_file or "the config"
            raise ModelError(f"{where}: models[{i}] ({plan.registry_name}): {exc}") from None
    _require_writable(Path(config.search.checkpoint_dir).expanduser(), "search.checkpoint_dir")
    claims = Claims(storage_for(config).engine)  # an unreachable storage fails before any work
    experiment_id = open_experiment(
        config.name, config.tracking.uri, config.tracking.artifact_location
    )
    # Every model is built (pretrained weights fetched) before any data or trial: a missing
    # download stops the run in seconds, not after hours of other models' training.
    starts = [StartingPoint(plan, len(config.class_names)) for plan in plans]
    return device, plans, claims, experiment_id, starts


def _require_writable(folder: Path, key: str) -> None:
    """A folder the run must write to, checked before any run or study exists."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{folder.resolve()} is not writable ({exc.strerror or exc}): pneumobench keeps "
            f"checkpoints there. Set {key} to a writable folder (or run from one)."
        ) from None


def _print_data(
    console: Console, config: ExperimentConfig, data: PreparedData, device: str, seconds: float
) -> None:
    summary = data.summary()
    console.print(
        f"[bold]{config.name}[/]: {data.source} data from {data.root}, {config.data.image_size} px, "
        f"train {summary['n_train']} / val {summary['n_val']} / test {summary['n_test']} images "
        f"(digest {data.digest}, seed {config.seed}) on {device} [dim]({seconds:.1f}s to load)[/]"
    )
    for note in data.notes:
        console.print(f"  [dim]{note}[/]")
    for line in data.skipped[:10]:
        console.print(f"  [yellow]skipped[/] {line}")
    if data.validation_note:
        console.print(f"  [yellow]validation:[/] {data.validation_note}")
    looks, experiments = test_set_looks(client(config.tracking.uri), data.test_digest)
    if looks:
        console.print(
            f"  [yellow]test set[/] (content digest {data.test_digest}): evaluated {looks} "
            f"time(s) before in this store, in {experiments} experiment(s); every look is counted"
        )
