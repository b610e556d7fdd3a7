"""Tests of pneumobench/data/split.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumobench.config import parse_config
from pneumobench.data import prepare_data
from tests.conftest import tiny_config


def test_validation_split_is_patient_grouped_and_stratified(fake_kermany: Path) -> None:
    config = parse_config(tiny_config(fake_kermany))
    data = prepare_data(config)
    assert not set(data.train.patients) & set(data.val.patients)
    assert not set(data.train.keys) & set(data.val.keys)
    # official val (2 patients per class) merged into train before carving
    assert sum(len(s) for s in (data.train, data.val)) == 2 * (12 + 2) * 2
    assert set(data.val.labels.tolist()) == {0, 1}
    assert 0.15 < len(data.val) / (len(data.train) + len(data.val)) < 0.35
    # images are grey, square, at the configured size
    assert data.train.images.shape[1:] == (32, 32) and data.train.images.dtype == np.uint8
    csv_lines = data.split_csv().splitlines()
    assert csv_lines[0] == "path,split,label,class,patient"
    assert len(csv_lines) == 1 + len(data.train) + len(data.val) + len(data.test)


def test_same_seed_same_split_other_seed_other_split(fake_kermany: Path) -> None:
    a = prepare_data(parse_config(tiny_config(fake_kermany)))
    b = prepare_data(parse_config(tiny_config(fake_kermany)))
    c = prepare_data(parse_config(tiny_config(fake_kermany, seed=99)))
    assert a.val.keys == b.val.keys and a.digest == b.digest
    assert a.val.keys != c.val.keys and a.digest != c.digest
