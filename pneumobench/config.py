"""The experiment configuration: one validated schema, friendly errors, command-line overrides.

Every key a user can write is declared here, so an unknown or misspelt key is an error that names
the key, where it is, and the closest valid key instead of being silently ignored.
"""

from __future__ import annotations

import copy
import os
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from pneumobench.data.labels import class_names_for
from pneumobench.data.sources import SOURCES
from pneumobench.errors import ConfigError
from pneumobench.text import did_you_mean

DATA_ROOT_ENV = "PNEUMOBENCH_DATA_ROOT"
LABEL_FORBIDDEN = "'\"`\\"
TRACKING_SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks")
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")

VAL_METRICS = (
    "val_f1",
    "val_recall",
    "val_precision",
    "val_accuracy",
    "val_auc",
    "val_specificity",
    "val_loss",
)


def _one_of(value: str, options: Any, what: str) -> str:
    """``value`` if it is one of ``options``, else an error with the closest and all options."""
    if value not in options:
        raise ValueError(
            f"unknown {what} '{value}'{did_you_mean(value, options)}; "
            f"choose one of {', '.join(options)}"
        )
    return value


class StrictModel(BaseModel):
    """Unknown keys are errors, and assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(StrictModel):
    """Random affine jitter (and optional intensity jitter) applied to whole batches as tensors
    (never per image through PIL)."""

    enabled: bool = True
    rotation: float = Field(10.0, ge=0, le=180, description="max rotation, degrees")
    translate: float = Field(0.05, ge=0, le=0.5, description="max shift, fraction of the side")
    scale: tuple[float, float] = (0.9, 1.1)
    hflip: bool = Field(
        False, description="off by default: a chest X-ray is not left-right symmetric (heart)"
    )
    brightness: float = Field(
        0.0, ge=0, le=0.5, description="max shift of the intensities in [0, 1], per image (0: off)"
    )
    contrast: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="max relative change of the contrast around the image's mean, per image "
        "(0: off)",
    )
    gamma: float = Field(
        0.0,
        ge=0,
        le=1,
        description="max |log gamma| of a per-image gamma curve (0: off); exposure and processing "
        "differ between X-ray machines",
    )

    @model_validator(mode="after")
    def _scale_order(self) -> AugmentConfig:
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(
                f"scale must be [low, high] with 0 < low <= high, got {list(self.scale)}"
            )
        return self


class DataConfig(StrictModel):
    """Where the images are and how they become arrays (``data:``)."""

    source: str = Field("folder", description="a data source: folder | medmnist")
    path: Path
    image_size: int = Field(64, ge=16, le=1024)
    resize: Literal["squash", "center_crop", "pad"] = Field(
        "pad",
        description="how non-square images become square: stretch, central square, black borders "
        "(pad: best on validation in the measurement of benchmarks/resize/)",
    )
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    merge_official_val: bool = Field(
        True, description="fold the official 16-image val folder into train before carving"
    )
    limit_per_class: int | None = Field(
        None,
        ge=2,
        description="keep at most this many images per (split, class), chosen with the seed: "
        "for smoke runs; recorded with every result",
    )
    on_bad_image: Literal["error", "skip"] = Field(
        "error", description="unreadable image: stop and name it, or leave it out and log it"
    )
    on_leak: Literal["warn", "error"] = Field(
        "warn",
        description="patients or near-duplicate images across splits: report them, or stop",
    )
    augment: AugmentConfig = AugmentConfig()
    cache_dir: Path = Field(Path(".pneumobench/cache"), description="decoded-image cache")
    download: Literal["auto", "never"] = Field(
        "auto",
        description="a missing PneumoniaMNIST file: fetch it (md5 checked; $PNEUMOBENCH_MIRROR "
        "for a mirror), or stop and say where to get it",
    )
    medmnist_size: Literal[28, 64, 128, 224] | None = Field(
        None,
        description="source medmnist: which MedMNIST+ file (pneumoniamnist_224.npz for 224) when "
        "data.path is a folder; default 28, or the size the file name says",
    )

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        return _one_of(value, SOURCES, "data source")

    @model_validator(mode="after")
    def _size_for_medmnist(self) -> DataConfig:
        if self.medmnist_size is not None and self.source != "medmnist":
            raise ValueError(
                f"data.medmnist_size applies to source: medmnist only (source is {self.source}); "
                "remove it"
            )
        return self


class ProtocolConfig(StrictModel):
    """The one transfer-learning protocol every model goes through. Searchable fields are marked."""

    max_epochs: int = Field(10, ge=1)
    freeze_epochs: int = Field(1, ge=0, description="epochs with a frozen pretrained backbone")
    patience: int = Field(3, ge=1, description="early stopping on the search objective")
    class_weights: Literal["balanced", "none"] = "balanced"
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    backbone_lr_mult: float = Field(0.1, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    batch_size: int = Field(64, ge=1)
    scheduler: Literal["cosine", "none"] = "cosine"
    warmup_epochs: int = Field(
        0, ge=0, description="epochs of linear LR warmup (from 10% of lr) before the schedule"
    )
    ema_decay: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="exponential moving average of the weights (timm ModelEmaV3), e.g. 0.99; 0 "
        "is off. When on, validation, checkpoints and the test evaluation use the EMA weights",
    )
    layer_decay: float = Field(
        1.0,
        gt=0,
        le=1,
        description="layer-wise LR decay for pretrained timm backbones (timm "
        "param_groups_layer_decay): layer i of n trains at lr * backbone_lr_mult * "
        "layer_decay^(n-1-i); 1 is off",
    )
    eval_batch_size: int = Field(512, ge=1)
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="training steps' arithmetic: auto is mixed precision on CUDA (bf16, else "
        "fp16) and fp32 on CPU; bf16 autocasts on a GPU and on a CPU with AVX512-BF16 or AMX (a "
        "resnet18 step at 64 px about 1.5x faster there) and trains in fp32 on any other CPU, "
        "where emulated bf16 is 5-12x slower; the tag 'precision' of each model run says "
        "what it trained in; predictions keep auto's precision",
    )


# What Optuna may tune: every protocol field except the budgets that define the protocol itself.
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


def _protocol_problems(where: str, base: ProtocolConfig, values: dict[str, Any]) -> list[str]:
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


def _space_problems(where: str, space: dict[str, Any], base: ProtocolConfig) -> list[str]:
    """Every value a search space can sample must be a valid value of the field it sets."""
    problems: list[str] = []
    for name, spec in space.items():
        values = spec.choices if isinstance(spec, CategoricalParam) else [spec.low, spec.high]
        for value in values:
            found = _protocol_problems(f"{where}.{name}", base, {name: value})
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

    n_trials: int = Field(10, ge=1)
    timeout: float | None = Field(None, gt=0, description="seconds per model study")
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    objective: str = "val_f1"
    storage: str = "sqlite:///optuna.db"
    space: dict[str, Param] = Field(default_factory=_default_space)
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
        return _one_of(value, VAL_METRICS, "objective")

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
        return "minimize" if self.objective == "val_loss" else "maximize"


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


class OperatingPointsConfig(StrictModel):
    """Targets of the validation-chosen thresholds (see ``benchmark/operating_points.py``)."""

    sensitivity: float = Field(
        0.95, gt=0, le=1, description="specificity and precision are ranked at this sensitivity"
    )
    specificity: float = Field(
        0.90, gt=0, le=1, description="recall (sensitivity) is ranked at this specificity"
    )


class EnsembleConfig(StrictModel):
    """Soft-vote ensembles evaluated as leaderboard rows (``evaluation.ensemble``)."""

    top_k: int = Field(
        0,
        ge=0,
        description="average the class probabilities of the k final models with the best "
        "validation ROC AUC (0: no ensemble); its thresholds are chosen on validation",
    )
    seeds: bool = Field(
        True,
        description="a model retrained with two or more seeds also gets its seed ensemble (the "
        "seeds' models averaged) as a row; it stands in for the model in the top-k ensemble",
    )


class EvaluationConfig(StrictModel):
    """How the final models are judged on test (hyperparameters never see any of this)."""

    bootstrap_resamples: int = Field(
        2000, ge=100, description="bootstrap resamples of the test patients (stratified by class)"
    )
    ci_level: float = Field(0.95, gt=0.5, lt=1)
    alpha: float = Field(0.05, gt=0, lt=0.5, description="significance level, Holm-adjusted")
    operating_points: OperatingPointsConfig = OperatingPointsConfig()
    calibration_bins: int = Field(15, ge=2)
    seeds: list[int] = Field(
        default_factory=list,
        description="retrain the best hyperparameters with these seeds: mean +/- std on test",
    )
    tta: Literal["none", "hflip"] = Field(
        "none",
        description="test-time augmentation of every final model alike (validation and test): "
        "hflip averages each image's and its mirror image's probabilities",
    )
    ensemble: EnsembleConfig = Field(default_factory=lambda: EnsembleConfig())


def check_store_url(url: str, schemes: tuple[str, ...], what: str) -> str:
    """A database or tracking URL of a scheme the store supports; SQLite with three slashes."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        if url.startswith("sqlite:"):
            raise ValueError(
                f"'{url}' is not a SQLite URL: write sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (three or four slashes)"
            )
        if what.startswith("MLflow"):  # a plain folder is an MLflow file store
            return url
    base = scheme.split("+")[0]
    if not sep or base not in schemes:
        raise ValueError(
            f"'{url}' cannot be used as the {what}: the URL's scheme must be one of "
            f"{', '.join(schemes)} (e.g. sqlite:///{'mlflow' if what.startswith('MLflow') else 'optuna'}"
            ".db)"
        )
    if base == "sqlite" and not rest.startswith("/"):
        raise ValueError(f"'{url}': a SQLite URL has three slashes, e.g. sqlite:///mlflow.db")
    return url


class TrackingConfig(StrictModel):
    """Where and what MLflow records (``tracking:``)."""

    uri: str = "sqlite:///mlflow.db"
    artifact_location: str | None = Field(
        None, description="artifact root for new experiments; default ./mlruns beside a local store"
    )
    upload_checkpoints: bool | None = Field(
        None,
        description="log each new best trial's weights to MLflow so that any worker can run the "
        "final evaluation; default: only when the tracking URI is a server",
    )
    system_metrics: bool = Field(
        True, description="log CPU, memory (and GPU) utilization to each trial run"
    )
    system_metrics_interval: float = Field(10.0, gt=0, description="seconds between samples")

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return check_store_url(value, TRACKING_SCHEMES, "MLflow tracking store")


class ExperimentConfig(StrictModel):
    """One experiment file: the whole benchmark, validated."""

    name: str = Field(min_length=1, description="the MLflow experiment")
    seed: int = 42
    task: Literal["binary", "multiclass"] = "binary"
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    data: DataConfig
    protocol: ProtocolConfig = ProtocolConfig()
    search: SearchConfig = SearchConfig()
    models: list[ModelEntry] = Field(min_length=1)
    plugins: list[str] = Field(
        default_factory=list,
        description="model plugins: Python files (relative to this config) or importable modules "
        "whose @register_model builders join the registry for this run",
    )
    evaluation: EvaluationConfig = EvaluationConfig()
    tracking: TrackingConfig = TrackingConfig()

    _source: Path | None = PrivateAttr(None)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got '{value}'")

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentConfig:
        labels = [m.key for m in self.models]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(
                f"models: label(s) {', '.join(duplicates)} appear twice; give each a unique "
                "'label' (e.g. {name: resnet18, pretrained: false, label: resnet18-scratch})"
            )
        from pneumobench.data.sources import get_source

        problem = get_source(self.data.source).check_task(self.task)
        if problem:
            raise ValueError(problem)
        problems = _space_problems("search.space", self.search.space, self.protocol)
        for i, entry in enumerate(self.models):
            overrides = {k: v for k, v in entry.protocol.model_dump().items() if v is not None}
            problems += _protocol_problems(f"models[{i}].protocol", self.protocol, overrides)
            problems += _space_problems(f"models[{i}].space", entry.space, self.protocol)
        if problems:
            raise ValueError("\n  - ".join(problems))
        return self

    # --- derived views -------------------------------------------------------------------
    def data_path(self) -> Path:
        """Relative paths resolve against $PNEUMOBENCH_DATA_ROOT, else the config file's folder."""
        path = Path(os.path.expanduser(self.data.path))
        if path.is_absolute():
            return path
        root = os.environ.get(DATA_ROOT_ENV)
        if root:
            return Path(root).expanduser().resolve() / path
        base = self._source.parent if self._source else Path.cwd()
        return (base / path).resolve()

    def load_plugins(self) -> list[str]:
        """Import the ``plugins:`` (files relative to this config's folder); their origins."""
        from pneumobench.registry.plugins import load_plugins

        return load_plugins(self.plugins, self._source.parent if self._source else Path.cwd())

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names by label index for this task."""
        return class_names_for(self.task)


# --- loading ---------------------------------------------------------------------------------


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read, override (``dotted.key=value``) and validate a YAML experiment file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at position {exc.start}): "
            "save the file as UTF-8"
        ) from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: expected a mapping of keys (name, data, models, ...) at the top"
        )
    if overrides:  # a mistake in the file is the file's; one the overrides bring is theirs
        parse_config(copy.deepcopy(raw), origin=str(path))
        for item in overrides:
            apply_override(raw, item)
    origin = " ".join(f"--set {o}" for o in overrides or []) or str(path)
    config = parse_config(raw, origin=origin)
    config._source = path.resolve()
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key written twice in one mapping is an error (the
    plain loader keeps the last one and silently drops the first section)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key '{key}' is written twice in one section (lines {seen[key]} and {line}); "
                    "keep one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_config(raw: dict[str, Any], origin: str = "<config>") -> ExperimentConfig:
    """Validate a config mapping; ``origin`` names it in errors."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin)) from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """``--set protocol.lr=0.01``: the value is parsed as YAML, so numbers and lists work."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected dotted.key=value, e.g. protocol.max_epochs=3")
    parts = key.strip().split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"--set {item!r}: '{where}' is not a section that holds keys")
        node = node.setdefault(part, {})
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    last = parts[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = parsed
    elif isinstance(node, dict):
        node[last] = parsed
    else:
        raise ConfigError(f"--set {item!r}: '{'.'.join(parts[:-1])}' is not a section")


# --- friendly validation errors ------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for a in get_args(annotation) for m in _models_in(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _step(annotation: Any, part: Any) -> tuple[Any, bool]:
    """Move one location element down the schema. Returns (annotation, shown_in_path)."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _step(args[0], part)
    if origin in (list, tuple) and isinstance(part, int):
        return args[0], True
    if origin is dict:
        return args[1], True
    if origin in (Union, types.UnionType):
        for model in _models_in(annotation):
            tag = model.model_fields.get("type")
            if part == model.__name__ or (tag is not None and get_args(tag.annotation) == (part,)):
                return model, False
        for model in _models_in(annotation):
            if part in model.model_fields:
                return model.model_fields[part].annotation, True
        return None, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part)
        return (field.annotation if field else None), True
    return None, True


def _locate(loc: tuple[Any, ...]) -> tuple[str, list[str]]:
    """The dotted path of a location, and the keys valid at its parent (for 'did you mean')."""
    annotation: Any = ExperimentConfig
    shown: list[str] = []
    parent_keys: list[str] = []
    for part in loc:
        parent_keys = sorted({f for m in _models_in(annotation) for f in m.model_fields})
        annotation, visible = _step(annotation, part) if annotation is not None else (None, True)
        if visible:
            shown.append(f"[{part}]" if isinstance(part, int) else str(part))
    path = ".".join(shown).replace(".[", "[")
    return path or "(top level)", parent_keys


def format_validation_error(exc: ValidationError, origin: str) -> str:
    """pydantic's errors as one line per problem: dotted location, message, closest valid key."""
    lines = []
    seen: set[str] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        path, keys = _locate(loc)
        if err["type"] == "extra_forbidden":
            bad = loc[-1]
            message = f"unknown key '{bad}'{did_you_mean(bad, keys)}"
            if keys:
                message += f"; valid keys here: {', '.join(keys)}"
        elif err["type"] == "missing":
            message = "required key is missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("value_error", "assertion_error"):
                message += f" (got {err['input']!r})"
        line = f"  - {message}" if path == "(top level)" else f"  - {path}: {message}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    count = len(lines)
    head = f"{origin}: {count} problem{'s' if count > 1 else ''} in the configuration"
    return "\n".join([head, *lines])
