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


def test_an_epochs_augmentation_drawn_at_once_equals_drawing_it_batch_by_batch(tiny) -> None:
    """The feeder draws every batch's numbers before the epoch (one upload on a GPU, no host
    sync per step); they are exactly the numbers the batches drew one by one before."""
    from pneumobench.config import AugmentConfig
    from pneumobench.data.batches import BatchFeeder, random_intensity

    _, data = tiny
    cfg = AugmentConfig(hflip=True, brightness=0.1, contrast=0.1, gamma=0.1)
    feeder = BatchFeeder(data.train, torch.device("cpu"), cfg)
    got = list(feeder.batches(7, shuffle=True, generator=torch.Generator().manual_seed(3)))
    generator = torch.Generator().manual_seed(3)
    order = torch.randperm(len(feeder), generator=generator)
    for k, start in enumerate(range(0, len(feeder), 7)):
        idx = order[start : start + 7]
        x = feeder.images[feeder.rows[idx]].unsqueeze(1).float().div_(255.0)
        x = random_intensity(random_affine(x, cfg, generator), cfg, generator)
        assert torch.equal(got[k][0], x) and torch.equal(got[k][1], feeder.labels[idx])
