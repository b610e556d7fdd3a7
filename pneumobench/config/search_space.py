"""What Optuna may tune and how (``search:``), and the model entries that can override it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from pneumobench.config.fields import (
    DEFAULT_STORAGE_URL,
    LABEL_FORBIDDEN,
    STORAGE_SCHEMES,
    StrictModel,
    check_store_url,
    one_of,
)
from pneumobench.config.sections import ProtocolConfig
from pneumobench.text import did_you_mean
from pneumobench.tracking.schema import VAL_F1, VAL_LOSS, VAL_METRICS

SEARCHABLE = tuple(
    name
    for name in ProtocolConfig.model_fields
    if name not in {"max_epochs", "patience", "eval_batch_size", "precision"}
)

ProtocolOverrides = create_model(  # same keys as ProtocolConfig, all optional
    "ProtocolOverrides",
    __config__=ConfigDict(extra="forbid"),
    **{
        name: (field.annotation | None, None) for name, field in ProtocolConfig.model_fields.items()
    },
)


class FloatParam(StrictModel):
    """A float hyperparameter between ``low`` and ``high`` (log scale or stepped if asked)."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(StrictModel):
    """An integer hyperparameter between ``low`` and ``high``."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = 1

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class CategoricalParam(StrictModel):
    """A hyperparameter drawn from ``choices``."""

    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low >= high:
        raise ValueError(f"low ({low}) must be smaller than high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log scale needs low > 0, got low={low}")
    if log and step not in (None, 1):
        raise ValueError("Optuna cannot combine log=true with a step")


Param = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]  # noqa: UP007


def _default_space() -> dict[str, Any]:
    return {
        "lr": FloatParam(type="float", low=1e-4, high=3e-3, log=True),
        "weight_decay": FloatParam(type="float", low=1e-6, high=1e-2, log=True),
        "dropout": FloatParam(type="float", low=0.0, high=0.5),
    }


def protocol_problems(where: str, base: ProtocolConfig, values: dict[str, Any]) -> list[str]:
    """Why ``base`` with ``values`` is not a valid protocol, one message per bad field."""
    try:
        ProtocolConfig.model_validate({**base.model_dump(), **values})
    except ValidationError as exc:
        return [
            f"{where}.{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')} "
            f"(got {e.get('input')!r})"
            for e in exc.errors()
        ]
    return []


def space_problems(where: str, space: dict[str, Any], base: ProtocolConfig) -> list[str]:
    """Every value a search space can sample must be a valid value of the field it sets."""
    problems: list[str] = []
    for name, spec in space.items():
        values = spec.choices if isinstance(spec, CategoricalParam) else [spec.low, spec.high]
        for value in values:
            found = protocol_problems(f"{where}.{name}", base, {name: value})
            problems += [p.replace(f"{where}.{name}.{name}:", f"{where}.{name}:") for p in found]
    return problems


def _check_space_keys(space: dict[str, Any]) -> dict[str, Any]:
    for key in space:
        if key not in SEARCHABLE:
            hint = did_you_mean(key, SEARCHABLE)
            raise ValueError(
                f"'{key}' is not a searchable hyperparameter{hint}. "
                f"Searchable: {', '.join(SEARCHABLE)}"
            )
    return space


class SearchConfig(StrictModel):
    """The Optuna search of every model (``search:``)."""

    n_trials: int = Field(10, ge=1, description="finished (complete or pruned) trials per model")
    timeout: float | None = Field(None, gt=0, description="seconds per model study")
    sampler: Literal["tpe", "random"] = Field("tpe", description="seeded TPE, or random search")
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="stops unpromising trials early, by their validation objective"
    )
    objective: str = Field(
        VAL_F1,
        description="val_f1, val_recall, val_precision, val_accuracy, val_auc, val_specificity or "
        "val_loss (minimized): what the search optimizes and early stopping watches",
    )
    storage: str = Field(
        DEFAULT_STORAGE_URL, description="any Optuna RDB URL; PostgreSQL for several workers"
    )
    space: dict[str, Param] = Field(
        default_factory=_default_space,
        description="{name: {type: float|int, low, high, log, step}} or {type: categorical, "
        "choices: [...]}; names are protocol keys",
    )
    heartbeat_interval: int = Field(
        30, ge=1, description="seconds between a running trial's heartbeats (Optuna RDB storage)"
    )
    grace_period: int = Field(
        90, ge=2, description="a trial silent this long is failed and retried by another worker"
    )
    poll_interval: float = Field(
        2.0, gt=0, description="seconds between checks while other workers finish a study"
    )
    checkpoint_dir: Path = Field(
        Path(".pneumobench/checkpoints"),
        description="where each study's best checkpoint is kept (a writable folder)",
    )

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, value: str) -> str:
        return one_of(value, VAL_METRICS, "objective")

    @field_validator("space")
    @classmethod
    def _searchable_keys(cls, space: dict[str, Any]) -> dict[str, Any]:
        return _check_space_keys(space)

    @field_validator("storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        return check_store_url(value, STORAGE_SCHEMES, "Optuna storage")

    @model_validator(mode="after")
    def _grace_after_heartbeat(self) -> SearchConfig:
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"grace_period ({self.grace_period}) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval}), or live trials are failed as dead"
            )
        return self

    @property
    def direction(self) -> str:
        """The objective's direction: "minimize" for val_loss, "maximize" otherwise."""
        return "minimize" if self.objective == VAL_LOSS else "maximize"


class ModelEntry(StrictModel):
    """One candidate: a registry name plus optional per-model overrides."""

    name: str
    label: str | None = Field(None, description="unique display name; defaults to the name")
    pretrained: bool | str | None = Field(
        None,
        description="true/false, or a weights tag (timm tag, torchvision enum name such as "
        "IMAGENET1K_V1); default: the registry entry's default",
    )
    n_trials: int | None = Field(None, ge=1)
    seeds: list[int] | None = Field(
        None,
        description="this model's seed repeats instead of evaluation.seeds ([] for none): spend "
        "the retraining where it matters",
    )
    protocol: ProtocolOverrides = Field(default_factory=ProtocolOverrides)  # type: ignore[valid-type]
    space: dict[str, Param] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("space")
    @classmethod
    def _searchable_keys(cls, space: dict[str, Any]) -> dict[str, Any]:
        return _check_space_keys(space)

    @model_validator(mode="after")
    def _plain_label(self) -> ModelEntry:
        bad = sorted(set(self.key) & set(LABEL_FORBIDDEN))
        if bad or not self.key.strip() or not self.key.isprintable():
            shown = " ".join(repr(c) for c in bad) or "blank or unprintable characters"
            raise ValueError(
                f"label '{self.key}' contains {shown}: labels name runs, studies and folders and "
                "are matched in MLflow filters, so quotes, backslashes and control characters "
                "cannot be used. Give the entry a `label:` of letters, digits and - _ . : +"
            )
        return self

    @property
    def key(self) -> str:
        """The entry's unique label (its name when no label is given)."""
        return self.label or self.name
