"""The one look at the test set per final model, and the seed repeats of its hyperparameters.

These functions train and evaluate; they return results and log nothing (the caller does, through
:mod:`pneumobench.tracking.writer`). Hyperparameters and checkpoints were chosen on validation
data only; here each final model meets the test set exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from optuna.trial import FrozenTrial
from torch import nn

from pneumobench import profile
from pneumobench.config import AugmentConfig, EvaluationConfig, ProtocolConfig
from pneumobench.config.plan import ModelPlan
from pneumobench.data import PreparedData
from pneumobench.data.batches import BatchFeeder
from pneumobench.evaluate.held_out import HeldOutResult, evaluate_probabilities, headline
from pneumobench.tracking import schema as S
from pneumobench.train.device import exact_fp32, is_allocation_failure, release_memory
from pneumobench.train.protocol import fit, predict
from pneumobench.train.starting_point import StartingPoint

REPEAT_RESAMPLES = 100  # a repeat's own intervals are not shown; the spread across seeds is


@dataclass
class FinalModel:
    """The best trial's model, restored from its checkpoint and evaluated on test."""

    trial: FrozenTrial
    protocol: ProtocolConfig
    model: torch.nn.Module
    result: HeldOutResult


@dataclass
class SeedRepeat:
    """The best hyperparameters trained with one more seed, evaluated on test."""

    seed: int
    metrics: dict[str, float]  # argmax and operating-point metrics, without the test_ prefix
    result: HeldOutResult | None  # None: not evaluated now (the searched model, or logged before)
    run_id: str | None = None  # the run of a repeat logged before
    model: nn.Module | None = None  # the retrained model (trained now): its serving bundle


def evaluate_best(
    plan: ModelPlan,
    start: StartingPoint,
    data: PreparedData,
    device: torch.device,
    evaluation: EvaluationConfig,
    best: FrozenTrial,
    state_dict: dict[str, torch.Tensor],
) -> FinalModel:
    """Rebuild the best trial's model, load its checkpoint, evaluate it once on test."""
    protocol = plan.protocol_with(best.params)
    model = start.build(protocol.dropout)
    model.load_state_dict(state_dict)
    model.to(device)
    result = evaluate_test(model, data, device, protocol.eval_batch_size, evaluation, plan.seed)
    return FinalModel(best, protocol, model, result)


def repeat_with_seeds(
    plan: ModelPlan,
    start: StartingPoint,
    data: PreparedData,
    device: torch.device,
    augment: AugmentConfig,
    evaluation: EvaluationConfig,
    final: FinalModel,
    done: dict[int, tuple[str, dict[str, float]]] | None = None,
) -> Iterator[SeedRepeat]:
    """Retrain ``final``'s hyperparameters with each of the plan's seeds: each retrained model
    is a final model of its own, early-stopped on validation, then evaluated once on test (with
    its own validation-chosen thresholds). Seeds in ``done`` (run id and metrics of repeats
    finished by an interrupted earlier evaluation) are not retrained."""
    done = done or {}
    for seed in plan.seeds:
        if seed == plan.seed:
            yield SeedRepeat(seed, final.result.all_metrics(), None)
            continue
        if seed in done:
            run_id, metrics = done[seed]
            yield SeedRepeat(seed, metrics, None, run_id)
            continue
        model = start.build(final.protocol.dropout, seed=seed)
        fit(
            model,
            data,
            final.protocol,
            augment=augment,
            objective=plan.objective,
            direction=plan.direction,
            device=device,
            seed=seed,
        )
        repeat = evaluate_test(
            model,
            data,
            device,
            final.protocol.eval_batch_size,
            evaluation.model_copy(update={"bootstrap_resamples": REPEAT_RESAMPLES}),
            seed,
        )
        yield SeedRepeat(seed, repeat.all_metrics(), repeat, model=model)


def seed_summary(repeats: list[SeedRepeat], keys: list[str]) -> dict[str, float]:
    """Mean and sample standard deviation of each of ``keys`` (test metrics without the prefix)
    across seeds, and ``n_seeds``."""
    summary: dict[str, float] = {S.N_SEEDS: float(len(repeats))}
    for key in keys:
        values = np.array([r.metrics.get(key, np.nan) for r in repeats], dtype=float)
        if np.isfinite(values).all():
            mean, std = S.seed_names(S.test_metric(key))
            summary[mean] = float(values.mean())
            summary[std] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return summary


def describe(label: str, final: FinalModel, objective: str, evaluation: EvaluationConfig) -> str:
    """One console line: the final model's trial and both blocks of its test numbers."""
    return (
        f"[bold green]{label}[/] best trial {final.trial.number} "
        f"({objective} {final.trial.value:.4f}); {headline(final.result, evaluation)}"
    )


def evaluate_test(
    model: nn.Module,
    data: PreparedData,
    device: torch.device,
    batch_size: int,
    evaluation: EvaluationConfig,
    seed: int,
) -> HeldOutResult:
    """The test set's one look at a final model, with the numbers that say how sure it is.

    Thresholds are chosen on VALIDATION predictions (``operating_points``), then applied
    unchanged to test. Intervals resample test patients (images where no patient ids exist).
    With ``evaluation.tta`` the predictions of validation and test alike are test-time augmented.
    """
    with profile.stage("final evaluation"), exact_fp32(device):
        probs, val_probs = _predict_both(model, data, device, batch_size, evaluation.tta)
    return evaluate_probabilities(probs, val_probs, data, evaluation, seed)


def _predict_both(
    model: nn.Module, data: PreparedData, device: torch.device, batch_size: int, tta: str
) -> tuple[np.ndarray, np.ndarray]:
    # fp32 without TF32, as predict, export and serving compute: on a GPU autocast would move P
    # by up to 1e-2 and tie thousands of scores, and the thresholds come from these numbers
    test, val = BatchFeeder(data.test, device), BatchFeeder(data.val, device)
    probs = predict_with_retries(model, test, batch_size, device, tta)
    return probs, predict_with_retries(model, val, batch_size, device, tta)


def predict_with_retries(
    model: nn.Module, feeder: BatchFeeder, batch_size: int, device: torch.device, tta: str
) -> np.ndarray:
    """fp32 probabilities of a split; a device that runs out of memory is retried at half the
    batch (down to 1) rather than losing the final evaluation. Batch size does not change the
    numbers beyond float rounding (inference mode, BatchNorm frozen)."""
    while True:
        try:
            probs, _ = predict(model, feeder, batch_size, device, tta=tta, precision="fp32")
            return probs
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_allocation_failure(exc) or batch_size == 1:
                raise
            release_memory(device)
            batch_size = max(1, batch_size // 2)
