"""One Optuna trial, in the shape of Optuna's own examples: suggest, build, train with
``trial.report`` / ``should_prune`` after every epoch, return the validation objective.

What is logged lives in :class:`pneumobench.tracking.writer.TrialRun`; what is kept on disk in
:class:`CheckpointStore`. A trial whose score would make it the study's best saves its weights.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from pneumobench import interrupts, profile
from pneumobench.config import AugmentConfig, ProtocolConfig, TrackingConfig
from pneumobench.config.plan import ModelPlan
from pneumobench.data import PreparedData
from pneumobench.errors import ModelError
from pneumobench.progress import PlainProgress
from pneumobench.search.budget import Admission
from pneumobench.search.checkpoints import CheckpointStore
from pneumobench.search.recovery import this_worker
from pneumobench.search.study import beats, best_trial, suggest
from pneumobench.tracking import schema as S
from pneumobench.tracking.gpu_metrics import only_this_gpu
from pneumobench.tracking.writer import TrialRun
from pneumobench.train.device import gpu_uuid, is_allocation_failure
from pneumobench.train.protocol import DivergedError, fit
from pneumobench.train.starting_point import StartingPoint

# Trial failures that end the trial, not the study: recorded with their reason, then the search
# goes on (Optuna's ``catch``).
# What fails one trial (recorded with its reason; the study goes on) rather than the run: a
# diverged loss, memory, a model that cannot be built, and the errors a broken model raises in
# its forward pass (a plugin whose output has the wrong shape, say).
TRIAL_FAILURES = (
    DivergedError,
    torch.OutOfMemoryError,
    ModelError,
    RuntimeError,
    ValueError,
    TypeError,
    IndexError,
)


@dataclass
class TrialSetup:
    """What every trial of one model shares."""

    plan: ModelPlan
    start: StartingPoint
    data: PreparedData
    augment: AugmentConfig
    device: torch.device
    checkpoints: CheckpointStore
    tracking: TrackingConfig
    upload_checkpoints: bool
    experiment_id: str
    progress: PlainProgress


def objective(trial: optuna.Trial, setup: TrialSetup, admission: Admission) -> float:
    """Train one hyperparameter sample; its best validation objective."""
    plan = setup.plan
    trial.set_user_attr(S.TRIAL_WORKER_ATTR, this_worker())
    admission.lease.release()  # the trial exists in the storage: other workers may count it now
    params = suggest(trial, plan.space)
    protocol = plan.protocol_with(params)
    model = setup.start.build(protocol.dropout)
    setup.progress.trial_started(plan.label, trial.number, admission.index, plan.n_trials)
    only_this_gpu(gpu_uuid(setup.device))  # system metrics: not the node's other GPUs
    with TrialRun(
        setup.experiment_id,
        plan.label,
        plan.study_name,
        trial.number,
        protocol.model_dump(),
        plan.objective,
        plan.direction,
        system_metrics=setup.tracking.system_metrics,
        system_metrics_interval=setup.tracking.system_metrics_interval,
    ) as run:
        trial.set_user_attr(S.TRIAL_RUN_ATTR, run.run_id)
        on_epoch = _epoch_callback(trial, run, setup, protocol)
        try:
            result = fit(
                model,
                setup.data,
                protocol,
                augment=setup.augment,
                objective=plan.objective,
                direction=plan.direction,
                device=setup.device,
                seed=plan.seed,
                on_epoch=on_epoch,
                on_batch=partial(setup.progress.batch, plan.label),
            )
            if beats(result.best_score, trial.number, best_trial(trial.study), plan.direction):
                path = setup.checkpoints.save(
                    trial.number, result.state_dict, params, result.best_score
                )
                if setup.upload_checkpoints:
                    run.log_checkpoint(path)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            reason = failure_reason(exc, protocol)
            trial.set_user_attr(S.TRIAL_FAIL_ATTR, reason[:2000])
            run.fail_reason(reason)
            raise
        return result.best_score


def _epoch_callback(
    trial: optuna.Trial, run: TrialRun, setup: TrialSetup, protocol: ProtocolConfig
) -> Callable[[int, dict[str, float]], None]:
    """After each epoch: stop on Ctrl-C, log, show, report to Optuna, prune."""
    plan = setup.plan

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        interrupts.check()
        with profile.stage("logging and registry"):
            run.log_epoch(epoch, metrics)
        setup.progress.epoch(
            plan.label, trial.number, epoch, protocol.max_epochs, metrics, plan.objective
        )
        trial.report(metrics[plan.objective], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")

    return on_epoch


def failure_reason(exc: Exception, protocol: ProtocolConfig) -> str:
    """What a user reads in ``pneumobench.fail_reason``: out of memory (however the library
    says it) names the batch size of the step that ran out, and what to change."""
    if is_allocation_failure(exc):
        frames = [f.name for f in traceback.extract_tb(exc.__traceback__)]
        if "predict" in frames:
            return (
                f"out of memory while predicting with eval_batch_size {protocol.eval_batch_size}:"
                " try a smaller protocol.eval_batch_size"
            )
        return (
            f"out of memory while training with batch_size {protocol.batch_size}: try a smaller "
            "protocol.batch_size (or search it)"
        )
    return f"{type(exc).__name__}: {exc}"


def after_trial(
    study: optuna.Study, trial: FrozenTrial, setup: TrialSetup, console: Console
) -> None:
    """Optuna callback: report the trial, and keep only the best trial's checkpoint on disk."""
    plan, best = setup.plan, best_trial(study)
    setup.progress.trial_finished(plan.label, None if best is None else best.value)
    value = "-" if trial.value is None else f"{trial.value:.4f}"
    seconds = trial.duration.total_seconds() if trial.duration else float("nan")
    console.print(
        f"  {plan.label} trial {trial.number} {trial.state.name.lower()}: "
        f"{plan.objective} {value} (best {'-' if best is None else f'{best.value:.4f}'}) "
        f"in {seconds:.0f}s"
    )
    if trial.state == TrialState.FAIL:
        console.print(f"    [red]{trial.user_attrs.get(S.TRIAL_FAIL_ATTR, 'failed')}[/]")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if best is not None:  # other workers' running trials may be saving theirs
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        setup.checkpoints.keep_only({best.number} | {t.number for t in running})
