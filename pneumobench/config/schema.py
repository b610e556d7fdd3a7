"""The whole experiment file as one validated object, :class:`ExperimentConfig`.

Every key a user can write is declared in this package (sections in ``sections``, the search in
``search_space``), so an unknown or misspelt key is an error that names the key, where it is, and
the closest valid key instead of being silently ignored. A validated config is never changed
afterwards: a command that needs another value builds a new one (``with_changes``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from pneumobench.config.fields import DATA_ROOT_ENV, SOURCE_TASKS, StrictModel, class_names_for
from pneumobench.config.search_space import (
    ModelEntry,
    SearchConfig,
    protocol_problems,
    space_problems,
)
from pneumobench.config.sections import (
    DataConfig,
    EvaluationConfig,
    ProtocolConfig,
    TrackingConfig,
)


class ExperimentConfig(StrictModel):
    """One experiment file: the whole benchmark, validated."""

    name: str = Field(min_length=1, description="the MLflow experiment")
    seed: int = Field(42, description="the split, initial weights, batch order and sampler")
    task: Literal["binary", "multiclass"] = Field(
        "binary", description="normal / pneumonia, or normal / bacterial / viral pneumonia"
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    data: DataConfig
    protocol: ProtocolConfig = ProtocolConfig()
    search: SearchConfig = SearchConfig()
    models: list[ModelEntry] = Field(
        min_length=1,
        description="registry names, or {name, label, pretrained, n_trials, seeds, protocol, space} "
        "entries (pretrained: true, false, or a weights tag)",
    )
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
        tasks = SOURCE_TASKS[self.data.source]
        if self.task not in tasks:
            raise ValueError(
                f"data.source {self.data.source} serves task {' or '.join(tasks)} only, "
                f"not {self.task}"
            )
        problems = space_problems("search.space", self.search.space, self.protocol)
        for i, entry in enumerate(self.models):
            overrides = {k: v for k, v in entry.protocol.model_dump().items() if v is not None}
            problems += protocol_problems(f"models[{i}].protocol", self.protocol, overrides)
            problems += space_problems(f"models[{i}].space", entry.space, self.protocol)
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

    def subgroups_path(self) -> Path | None:
        """``data.subgroups`` resolved against the config file's folder (None when not set)."""
        if self.data.subgroups is None:
            return None
        path = Path(os.path.expanduser(self.data.subgroups))
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def base_dir(self) -> Path:
        """The folder relative ``plugins:`` files resolve against: the config file's, else cwd."""
        return self._source.parent if self._source else Path.cwd()

    @property
    def source_file(self) -> Path | None:
        """The YAML file this config was read from (None when built from a mapping)."""
        return self._source

    def with_changes(self, **changes: Any) -> ExperimentConfig:
        """A new validated config with top-level keys replaced; this one stays as it was."""
        changed = type(self).model_validate({**self.model_dump(), **changes})
        changed._source = self._source
        return changed

    def to_yaml(self) -> str:
        """The resolved config, every default filled in, as YAML (logged with every parent run)."""
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names by label index for this task."""
        return class_names_for(self.task)
