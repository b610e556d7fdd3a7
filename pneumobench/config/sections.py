"""The sections of an experiment file that describe one step each: data, augmentation, the
training protocol, evaluation and tracking. Every key a user can write is declared here (or in
``search_space``), with its default: the one source of every default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pneumobench.config.fields import (
    DEFAULT_TRACKING_URI,
    SOURCE_TASKS,
    TRACKING_SCHEMES,
    StrictModel,
    check_store_url,
    one_of,
)


class AugmentConfig(StrictModel):
    """Random affine jitter (and optional intensity jitter) applied to whole batches as tensors
    (never per image through PIL)."""

    enabled: bool = Field(True, description="random affine jitter of each training batch")
    rotation: float = Field(10.0, ge=0, le=180, description="max rotation, degrees")
    translate: float = Field(0.05, ge=0, le=0.5, description="max shift, fraction of the side")
    scale: tuple[float, float] = Field((0.9, 1.1), description="zoom range [low, high]")
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
    path: Path = Field(description="the data folder, or the .npz file / its folder")
    image_size: int = Field(64, ge=16, le=1024, description="square side in px, for every model")
    resize: Literal["squash", "center_crop", "pad"] = Field(
        "pad",
        description="how non-square images become square: stretch, central square, black borders "
        "(pad: best on validation in the measurement of benchmarks/resize/)",
    )
    val_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="share of train carved off as validation, by patient"
    )
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
    subgroups: Path | None = Field(
        None,
        description="a CSV mapping test images (a path or id column) to group columns (age band, "
        "sex, site, device, ...): the report's subgroup table and forest plot add them; relative "
        "to the config file",
    )
    medmnist_size: Literal[28, 64, 128, 224] | None = Field(
        None,
        description="source medmnist: which MedMNIST+ file (pneumoniamnist_224.npz for 224) when "
        "data.path is a folder; default 28, or the size the file name says",
    )

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        return one_of(value, SOURCE_TASKS, "data source")

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

    max_epochs: int = Field(10, ge=1, description="epoch budget of every training")
    freeze_epochs: int = Field(1, ge=0, description="epochs with a frozen pretrained backbone")
    patience: int = Field(3, ge=1, description="early stopping on the search objective")
    class_weights: Literal["balanced", "none"] = Field(
        "balanced", description="cross-entropy weighted by the training labels' class shares"
    )
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="sgd uses momentum")
    lr: float = Field(1e-3, gt=0, description="learning rate of the head (searched by default)")
    backbone_lr_mult: float = Field(
        0.1, gt=0, le=1, description="a pretrained backbone trains at lr times this"
    )
    weight_decay: float = Field(1e-4, ge=0, description="searched by default")
    momentum: float = Field(0.9, ge=0, lt=1, description="optimizer: sgd only")
    dropout: float = Field(0.2, ge=0, lt=1, description="before the head (searched by default)")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="of the cross-entropy")
    batch_size: int = Field(64, ge=1, description="training images per step")
    scheduler: Literal["cosine", "none"] = Field(
        "cosine", description="per epoch, to 1% of lr at the last epoch"
    )
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
    eval_batch_size: int = Field(512, ge=1, description="images per forward pass when predicting")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="training steps' arithmetic: auto is mixed precision on CUDA (bf16, else "
        "fp16) and fp32 on CPU; bf16 autocasts on a GPU and on a CPU with AVX512-BF16 or AMX "
        "and trains in fp32 on any other CPU, where bf16 is only emulated (much slower; "
        "measured in docs/performance.md); the tag 'precision' of each model run says what it "
        "trained in; predictions keep auto's precision",
    )


# What Optuna may tune: every protocol field except the budgets that define the protocol itself.


class OperatingPointsConfig(StrictModel):
    """Targets of the validation-chosen thresholds (see ``evaluate/operating_points.py``)."""

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
    ci_level: float = Field(0.95, gt=0.5, lt=1, description="of every interval")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="significance level, Holm-adjusted")
    operating_points: OperatingPointsConfig = OperatingPointsConfig()
    calibration_bins: int = Field(
        10, ge=2, description="equal-width bins of P(pneumonia) for ECE and the reliability diagram"
    )
    decision_curve: tuple[float, float] = Field(
        (0.05, 0.95),
        description="threshold probabilities the decision curve (net benefit) is drawn over",
    )
    failure_cases: int = Field(
        4,
        ge=0,
        le=16,
        description="the most confident false negatives and false positives of "
        "each final model, explained with Grad-CAM in the report (each kind)",
    )
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

    @field_validator("decision_curve")
    @classmethod
    def _curve_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low < high < 1:
            raise ValueError(
                f"evaluation.decision_curve {list(value)}: give [low, high] with 0 < low < high < 1"
            )
        return value

    champion: Literal["test", "validation"] = Field(
        "test",
        description="which model the registry's champion alias goes to: the leaderboard's top "
        "single model (chosen on test, so its test numbers are optimistic), or the best single "
        "model by the same metric on validation (its test numbers are then an unbiased estimate)",
    )


class TrackingConfig(StrictModel):
    """Where and what MLflow records (``tracking:``)."""

    uri: str = Field(
        DEFAULT_TRACKING_URI,
        description="MLflow tracking URI; http://host:5000 for a server; artifacts go to mlruns/ "
        "beside a SQLite store",
    )
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
