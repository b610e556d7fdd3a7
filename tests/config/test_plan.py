"""Tests of pneumobench/config/plan.py."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.mark.parametrize("names", [("..", "simple_cnn"), ("tiny", ".."), (".", ".")])
def test_a_name_or_label_of_dots_stays_inside_the_checkpoint_folder(
    tmp_path: Path, names: tuple[str, str]
) -> None:
    experiment, label = names
    raw = tiny_config(tmp_path, name=experiment)
    raw["models"] = [{"name": "simple_cnn", "label": label}]
    raw["search"]["checkpoint_dir"] = str(tmp_path / "ckpt")
    (plan,) = plan_models(parse_config(raw))
    root = (tmp_path / "ckpt").resolve()
    assert plan.checkpoint_dir.resolve().is_relative_to(root)
    assert plan.checkpoint_dir.resolve() != root
    assert ".." not in plan.checkpoint_dir.parts
