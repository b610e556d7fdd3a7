"""Tests of pneumobench/evaluate/saliency.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pneumobench.evaluate.saliency import grad_cam, panel_indices, target_layer
from pneumobench.registry import create_model


@pytest.mark.parametrize("name", ["simple_cnn", "resnet18", "timm:vit_tiny_patch16_224"])
def test_saliency_maps_have_the_input_size_and_are_deterministic(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, 2, pretrained=False, image_size=32)
    images = np.random.default_rng(0).integers(0, 255, (6, 32, 32), dtype=np.uint8)
    targets = np.array([0, 1, 1, 0, 1, 0])
    first = grad_cam(model, images, targets)
    again = grad_cam(model, images, targets)
    assert first.shape == images.shape and first.dtype == np.float32
    assert np.array_equal(first, again)
    assert first.min() >= 0 and first.max() <= 1
    assert (first.reshape(6, -1).max(1) > 0).any()  # something is explained
    _, kind = target_layer(model, 32)
    assert kind == ("tokens" if "vit" in name else "map")


def test_the_panel_is_the_same_for_every_model_and_stratified() -> None:
    labels = np.array([0] * 40 + [1] * 60)
    a, b = panel_indices(labels, seed=3), panel_indices(labels, seed=3)
    assert np.array_equal(a, b)
    assert (labels[a] == 0).sum() == 16 and (labels[a] == 1).sum() == 16
