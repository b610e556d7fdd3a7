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

from pneumobench.benchmark.evaluation import HeldOutResult, evaluate_test
from pneumobench.benchmark.run.plan import ModelPlan
from pneumobench.benchmark.run.weights import StartingPoint
from pneumobench.benchmark.training import fit
from pneumobench.config import AugmentConfig, EvaluationConfig, ProtocolConfig
from pneumobench.data import PreparedData
from pneumobench.tracking import schema as S

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
    metrics: dict[str, float]  # names without the test_ prefix
    retrained: bool  # False: the searched model, or a repeat logged before, is this seed's


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
    done: dict[int, dict[str, float]] | None = None,
) -> Iterator[SeedRepeat]:
    """Retrain ``final``'s hyperparameters with each of ``evaluation.seeds``: each retrained model
    is a final model of its own, early-stopped on validation, then evaluated once on test.
    Seeds in ``done`` (repeats finished by an interrupted earlier evaluation) are not retrained."""
    done = done or {}
    for seed in evaluation.seeds:
        if seed == plan.seed:
            yield SeedRepeat(seed, dict(final.result.metrics), retrained=False)
            continue
        if seed in done:
            yield SeedRepeat(seed, dict(done[seed]), retrained=False)
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
        yield SeedRepeat(seed, dict(repeat.metrics), retrained=True)


def seed_summary(repeats: list[SeedRepeat]) -> dict[str, float]:
    """Mean and sample standard deviation of every test metric across seeds (``n_seeds`` too)."""
    summary: dict[str, float] = {S.N_SEEDS: float(len(repeats))}
    for key in repeats[0].metrics:
        values = np.array([r.metrics[key] for r in repeats], dtype=float)
        if np.isfinite(values).all():
            mean, std = S.seed_names(S.test_metric(key))
            summary[mean] = float(values.mean())
            summary[std] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return summary


def describe(label: str, final: FinalModel, objective: str) -> str:
    """One console line: the final model's headline test numbers."""
    m = final.result.metrics
    return (
        f"[bold green]{label}[/] best trial {final.trial.number} "
        f"({objective} {final.trial.value:.4f}) on test: recall {m['recall']:.3f}, "
        f"f1 {m['f1']:.3f}, accuracy {m['accuracy']:.3f}, roc_auc {m['roc_auc']:.3f}"
    )
