"""What the training tests share: a tiny prepared data set, and fit() with the test defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from pneumobench.config import parse_config
from pneumobench.data import prepare_data
from pneumobench.train.device import resolve_device
from pneumobench.train.protocol import fit
from tests.conftest import tiny_config


@pytest.fixture
def tiny(fake_kermany: Path):
    config = parse_config(tiny_config(fake_kermany))
    return config, prepare_data(config)


def fit_tiny(config, data, model, **protocol):
    """``fit`` on the tiny data with the test protocol, CPU, seed 1."""
    return fit(
        model,
        data,
        config.protocol.model_copy(update=protocol),
        augment=config.data.augment,
        objective="val_f1",
        direction="maximize",
        device=resolve_device("cpu"),
        seed=1,
    )
