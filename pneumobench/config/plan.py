"""What one model's run is, resolved once from the config and its model entry.

Everything downstream (weights, budget, trials, checkpoints, final evaluation, tracking) reads
the :class:`ModelPlan`, never the YAML: a per-model override is applied in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pneumobench.config.schema import ExperimentConfig
from pneumobench.config.search_space import ModelEntry
from pneumobench.config.sections import ProtocolConfig
from pneumobench.text import safe_name


def study_name(experiment: str, label: str) -> str:
    """The Optuna study of one (experiment, model): ``<experiment>/<label>``."""
    return f"{experiment}/{label}"


@dataclass(frozen=True)
class ModelPlan:
    """One candidate's run: what to build, how to train it, how much to search, where to keep it."""

    experiment: str
    label: str  # unique display name: MLflow run name, study suffix, leaderboard row
    registry_name: str
    pretrained: bool | str | None  # None: the registry entry's default
    protocol: ProtocolConfig  # the shared protocol with this model's overrides applied
    space: dict[str, Any]  # search space: the shared one with this model's entries on top
    n_trials: int  # finished (complete or pruned) trials to reach, across all workers
    seeds: tuple[int, ...]  # seed repeats of the best hyperparameters (evaluation.seeds or own)
    objective: str  # val_* metric the search optimizes and early stopping watches
    direction: str  # "maximize" | "minimize"
    image_size: int
    seed: int
    checkpoint_root: Path  # search.checkpoint_dir

    @property
    def study_name(self) -> str:
        """The model's Optuna study: ``<experiment>/<label>``."""
        return study_name(self.experiment, self.label)

    @property
    def checkpoint_dir(self) -> Path:
        """Where this worker keeps the study's best checkpoint."""
        return self.checkpoint_root / safe_name(self.experiment) / safe_name(self.label)

    def protocol_with(self, params: dict[str, Any]) -> ProtocolConfig:
        """The protocol with a trial's sampled hyperparameters."""
        return self.protocol.model_copy(update=params)


def plan_model(config: ExperimentConfig, entry: ModelEntry) -> ModelPlan:
    """Resolve one model entry against the experiment's shared settings."""
    overrides = {k: v for k, v in entry.protocol.model_dump().items() if v is not None}
    return ModelPlan(
        experiment=config.name,
        label=entry.key,
        registry_name=entry.name,
        pretrained=entry.pretrained,
        protocol=config.protocol.model_copy(update=overrides),
        space={**config.search.space, **entry.space},
        n_trials=entry.n_trials or config.search.n_trials,
        seeds=tuple(config.evaluation.seeds if entry.seeds is None else entry.seeds),
        objective=config.search.objective,
        direction=config.search.direction,
        image_size=config.data.image_size,
        seed=config.seed,
        checkpoint_root=Path(config.search.checkpoint_dir).expanduser(),
    )


def plan_models(config: ExperimentConfig) -> list[ModelPlan]:
    """One plan per configured model, in the config's order."""
    return [plan_model(config, entry) for entry in config.models]
