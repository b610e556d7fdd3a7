"""One leaderboard row as a typed object: what a model's latest final evaluation says, its
rank, and its paired comparison with the top row.

A row's logged metrics stay a mapping (``metrics``: MLflow metric name -> value), because their
names are built from the schema's rules (``test_at_spec_recall``, ``..._ci_low``); everything
else is a field. ``as_dict`` gives the flat JSON / CSV record the leaderboard has always printed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.tracking import schema as S


class RowStatus(StrEnum):
    """A model's state on the leaderboard."""

    EVALUATED = "evaluated"  # a final evaluation on test is logged
    FAILED = "failed"  # its final evaluation failed (the reason is in ``fail_reason``)
    INCOMPLETE = "not evaluated"  # its search was interrupted, or still runs elsewhere


@dataclass
class Comparison:
    """A row against the top row on the same test images, about the ranked quantity."""

    vs_champion_diff: float
    vs_champion_ci_low: float
    vs_champion_ci_high: float
    p_bootstrap: float
    p_mcnemar_image_level: float
    mcnemar_discordant: list[int]
    p_delong_image_level: float
    p_value: float = math.nan  # the bootstrap p before Holm's adjustment
    p_holm: float = math.nan


@dataclass
class LeaderboardRow:
    """One model of an experiment on the leaderboard."""

    model: str  # the label
    status: RowStatus
    run_id: str
    registry_name: str | None = None
    family: str | None = None
    num_params: int | None = None
    pretrained_source: str | None = None
    image_size: str | None = None
    dataset_digest: str | None = None
    seed: str | None = None
    fail_reason: str | None = None
    bootstrap_unit: str = "image"
    op_target_sensitivity: str | None = None
    op_target_specificity: str | None = None
    seed_runs: str | None = None  # run ids of each seed's final model, comma-separated
    test_digest: str | None = None  # the test split's content (looks are counted by it)
    validation_note: str | None = None  # what validation is, where it is weak
    metrics: dict[str, float] = field(default_factory=dict)  # the logged test/val numbers
    rank: int | None = None
    champion: bool = False  # the top row
    deployed: bool = False  # what the registry's champion alias (predict, export, serving) is
    comparison: Comparison | None = None
    group: str | None = None  # A: not shown to be worse than the top row; B: worse
    significantly_worse: bool | None = None
    comparison_note: str | None = None  # why no comparison was made
    chance: tuple[float, float, float] | None = None  # a random scorer: mean, 95% range
    below_chance: bool | None = None  # the ranked value inside or under the random range
    all_metrics: dict[str, float] = field(default_factory=dict, repr=False)  # every logged one
    external: dict[str, dict[str, float]] = field(default_factory=dict)  # set name -> its metrics

    @property
    def evaluated(self) -> bool:
        """True when a final evaluation is logged."""
        return self.status == RowStatus.EVALUATED

    @property
    def is_ensemble(self) -> bool:
        """An ensemble row (it trained nothing; no single registered model)."""
        return self.family == S.FAMILY_ENSEMBLE

    @property
    def starting_point(self) -> str:
        """Where its weights started, in words: ``from scratch``, or the pretrained source."""
        source = self.pretrained_source or "unknown"
        return "from scratch" if source == "none" else source

    @property
    def n_seeds(self) -> int:
        """How many seeds' final models the row's numbers come from (1 without repeats)."""
        return int(self.metrics.get(S.N_SEEDS, 1) or 1)

    @property
    def seed_run_ids(self) -> list[str]:
        """The run of each seed's final model (the row's own run when there are no repeats)."""
        return [r for r in (self.seed_runs or "").split(",") if r] or [self.run_id]

    def targets(self, default: OperatingPointsConfig) -> OperatingPointsConfig:
        """The operating-point targets this row was evaluated with (its tags), else ``default``."""
        if self.op_target_sensitivity is None or self.op_target_specificity is None:
            return default
        return OperatingPointsConfig(
            sensitivity=float(self.op_target_sensitivity),
            specificity=float(self.op_target_specificity),
        )

    def value(self, key: str) -> float:
        """What ranks for ``key``: with repeated seeds the mean, else the single model's value."""
        value = self.metrics.get(S.seed_names(key)[0], self.metrics.get(key, math.nan))
        return float(value) if value is not None else math.nan

    def as_dict(self) -> dict[str, Any]:
        """The flat record of the JSON and CSV output (fields, metrics and comparison together)."""
        record = asdict(self)
        record.pop("all_metrics")
        record.pop("comparison")
        metrics = record.pop("metrics")
        external = record.pop("external")
        note = record.pop("comparison_note")
        record["status"] = str(self.status)
        group, worse = record.pop("group"), record.pop("significantly_worse")
        record.update(metrics)
        record["champion"] = record.pop("champion")
        if note is not None:
            record["comparison_note"] = note
        if self.comparison is not None:
            record.update(asdict(self.comparison))
        if group is not None:
            record.update(significantly_worse=worse, group=group)
        if external:
            record["external"] = external
        return record
