"""Tests of pneumobench/config/schema.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pneumobench.config import parse_config
from pneumobench.config.plan import plan_model
from pneumobench.errors import ConfigError
from tests.conftest import tiny_config


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "exp.yaml")
    return str(info.value)


def test_valid_config_fills_defaults(tmp_path: Path) -> None:
    config = parse_config(tiny_config(tmp_path))
    assert [m.key for m in config.models] == ["simple_cnn", "resnet18-scratch"]
    assert config.search.direction == "maximize"
    plan = plan_model(config, config.models[0])
    assert plan.protocol.batch_size == 16
    assert set(plan.space) == {"lr", "weight_decay", "dropout"}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"type": "float", "low": 1.0, "high": 0.5}, "must be smaller than high"),
        ({"type": "float", "low": 0.0, "high": 0.5, "log": True}, "log scale needs low > 0"),
        ({"type": "categorical", "choices": []}, "choices"),
    ],
)
def test_impossible_search_space(tmp_path: Path, spec: dict, needle: str) -> None:
    raw = tiny_config(tmp_path)
    raw["search"]["space"] = {"lr": spec}
    assert needle in _error(raw)


def test_space_key_must_be_a_protocol_hyperparameter(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["search"]["space"] = {"lrr": {"type": "float", "low": 0.1, "high": 0.2}}
    assert "did you mean 'lr'" in _error(raw)


def test_duplicate_labels_rejected(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, models=["simple_cnn", "simple_cnn"])
    assert "appear twice" in _error(raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"search": {"space": {"optimizer": {"type": "categorical", "choices": ["rmsprop"]}}}},
            "search.space.optimizer: Input should be 'adamw' or 'sgd'",
        ),
        (
            {"search": {"space": {"lr": {"type": "categorical", "choices": ["fast"]}}}},
            "search.space.lr: Input should be a valid number",
        ),
        (
            {"models": [{"name": "simple_cnn", "protocol": {"max_epochs": 0}}]},
            "models[0].protocol.max_epochs: Input should be greater than or equal to 1",
        ),
        (
            {
                "models": [
                    {
                        "name": "simple_cnn",
                        "space": {"batch_size": {"type": "int", "low": 0, "high": 8}},
                    }
                ]
            },
            "models[0].space.batch_size: Input should be greater than or equal to 1",
        ),
    ],
)
def test_sampled_and_overridden_values_must_be_valid_protocol_values(
    tmp_path: Path, change: dict, message: str
) -> None:
    raw = tiny_config(tmp_path)
    for key, value in change.items():
        raw[key] = {**raw.get(key, {}), **value} if key == "search" else value
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "exp.yaml")
    assert message in str(info.value)


def test_an_unknown_source_and_an_impossible_task_are_config_errors(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["data"]["source"] = "foldr"
    with pytest.raises(ConfigError, match="did you mean 'folder'"):
        parse_config(raw)
    raw["data"]["source"], raw["task"] = "medmnist", "multiclass"
    with pytest.raises(ConfigError, match="serves task binary only"):
        parse_config(raw)
