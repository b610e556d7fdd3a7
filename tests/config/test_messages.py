"""Tests of pneumobench/config/messages.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pneumobench.config import parse_config
from pneumobench.errors import ConfigError
from tests.conftest import tiny_config


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "exp.yaml")
    return str(info.value)


def test_unknown_key_names_location_and_closest_key(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["data"]["imag_size"] = 32
    message = _error(raw)
    assert "data.imag_size" in message and "did you mean 'image_size'" in message


def test_unknown_key_inside_a_model_entry(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["models"][1]["pretraned"] = True
    assert "models[1].pretraned" in _error(raw) and "'pretrained'" in _error(raw)


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["protocol"]["max_epochs"] = "ten"
    message = _error(raw)
    assert "protocol.max_epochs" in message and "integer" in message and "'ten'" in message
