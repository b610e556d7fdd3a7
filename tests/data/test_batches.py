"""Tests of pneumobench/data/batches.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pneumobench.config import parse_config
from pneumobench.data import prepare_data
from pneumobench.data.batches import random_affine
from tests.conftest import tiny_config


@pytest.fixture
def tiny(fake_kermany: Path):
    config = parse_config(tiny_config(fake_kermany))
    return config, prepare_data(config)


def test_batch_augmentation_is_per_image_and_keeps_shape(tiny) -> None:
    config, _ = tiny
    x = torch.rand(1, 1, 32, 32).repeat(8, 1, 1, 1)
    out = random_affine(x, config.data.augment, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert not torch.allclose(out[0], out[1])


def test_intensity_jitter_is_per_image_in_range_and_draws_nothing_when_off(tiny) -> None:
    from pneumobench.data.batches import random_intensity

    config, _ = tiny
    x = torch.rand(1, 1, 32, 32).repeat(8, 1, 1, 1)
    off = config.data.augment
    assert (off.brightness, off.contrast, off.gamma) == (0, 0, 0)  # the default: off
    on = off.model_copy(update={"brightness": 0.1, "contrast": 0.3, "gamma": 0.3})
    out = random_intensity(x, on, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out[0], out[1])  # each image its own draw
    assert not torch.allclose(out.std(dim=(1, 2, 3)), x.std(dim=(1, 2, 3)))  # contrast changed
    # every option draws only when on: with all off, the generator is left as it was
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(random_intensity(x, off, generator), x.clamp(0, 1))
    assert torch.equal(
        torch.rand(3, generator=generator),
        torch.rand(3, generator=torch.Generator().manual_seed(0)),
    )
