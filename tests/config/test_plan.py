"""Tests of pneumobench/config/plan.py."""

from __future__ import annotations

from pathlib import Path

from pneumobench.config import parse_config
from pneumobench.config.plan import plan_models
from tests.conftest import tiny_config


def test_a_plan_applies_per_model_overrides_once(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["models"] = [
        {"name": "simple_cnn", "n_trials": 5, "protocol": {"lr": 0.05}},
        {"name": "resnet18", "pretrained": False, "label": "r18"},
    ]
    simple, r18 = plan_models(parse_config(raw))
    assert (simple.n_trials, simple.protocol.lr, simple.study_name) == (5, 0.05, "tiny/simple_cnn")
    assert r18.n_trials == raw["search"]["n_trials"] and r18.protocol.lr != 0.05
    assert r18.checkpoint_dir.parts[-2:] == ("tiny", "r18")
