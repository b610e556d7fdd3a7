"""The experiment file: its schema (every key and its default), loading and ``--set``, the
messages a mistake gets, and the per-model plan resolved once from it.

- ``fields``: strict models, URL checks and the plain tables (data sources, class names);
- ``sections``: data, augmentation, protocol, evaluation, tracking;
- ``search_space``: the Optuna search and the model entries;
- ``schema``: :class:`ExperimentConfig`, the whole file;
- ``loading``: YAML, ``--set``; ``messages``: the errors a user reads;
- ``plan``: :class:`~pneumobench.config.plan.ModelPlan`, one model's run resolved once.
"""

from pneumobench.config.fields import DATA_ROOT_ENV, class_names_for
from pneumobench.config.loading import apply_override, load_config, parse_config
from pneumobench.config.schema import ExperimentConfig
from pneumobench.config.search_space import (
    CategoricalParam,
    FloatParam,
    IntParam,
    ModelEntry,
    SearchConfig,
)
from pneumobench.config.sections import (
    AugmentConfig,
    DataConfig,
    EnsembleConfig,
    EvaluationConfig,
    OperatingPointsConfig,
    ProtocolConfig,
    TrackingConfig,
)

__all__ = [
    "DATA_ROOT_ENV",
    "AugmentConfig",
    "CategoricalParam",
    "DataConfig",
    "EnsembleConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "FloatParam",
    "IntParam",
    "ModelEntry",
    "OperatingPointsConfig",
    "ProtocolConfig",
    "SearchConfig",
    "TrackingConfig",
    "apply_override",
    "class_names_for",
    "load_config",
    "parse_config",
]
