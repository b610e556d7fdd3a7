"""Tests of pneumobench/train/starting_point.py."""

from __future__ import annotations

from pathlib import Path

import torch

from pneumobench.config import parse_config
from pneumobench.config.plan import plan_models
from pneumobench.train.starting_point import StartingPoint
from tests.conftest import tiny_config


def test_every_trial_starts_from_the_same_weights_and_other_seeds_redraw_scratch_models(
    tmp_path: Path,
) -> None:
    raw = tiny_config(tmp_path)
    raw["models"] = ["simple_cnn"]
    start = StartingPoint(plan_models(parse_config(raw))[0], num_classes=2)

    def weights(model: torch.nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    first, second = weights(start.build(0.1)), weights(start.build(0.4))
    assert torch.equal(first, second)
    assert torch.equal(first, weights(start.build(0.1, seed=start.plan.seed)))
    assert not torch.equal(first, weights(start.build(0.1, seed=start.plan.seed + 1)))
    assert not start.facts.pretrained and start.facts.num_params > 0
