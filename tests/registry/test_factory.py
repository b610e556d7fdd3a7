"""Tests of pneumobench/registry/factory.py."""

from __future__ import annotations

import pytest
import torch

from pneumobench.errors import ModelError
from pneumobench.registry import create_model, get_architecture, list_models

CURATED = [
    "resnet18",
    "resnet34",
    "resnet50",
    "densenet121",
    "efficientnet_b0",
    "mobilenetv3_large_100",
    "convnext_tiny",
    "vit_tiny_patch16_224",
]


def test_list_models_with_wildcards() -> None:
    names = list_models()
    assert {"simple_cnn", "cifar_cnn", *CURATED} <= set(names)
    assert list_models("resnet*") == ["resnet18", "resnet34", "resnet50"]


@pytest.mark.parametrize("name", ["simple_cnn", "cifar_cnn"])
def test_custom_cnns_build_for_grey_input_and_any_class_count(name: str) -> None:
    model = create_model(name, 3, dropout=0.3, image_size=32)
    assert model(torch.rand(4, 1, 32, 32)).shape == (4, 3)
    assert model.num_params == sum(p.numel() for p in model.parameters())
    head, backbone = model.head_parameters(), model.backbone_parameters()
    assert len(head) == 2 and len(head) + len(backbone) == len(list(model.parameters()))
    assert not model.is_pretrained
    with pytest.raises(ModelError, match="no pretrained weights"):
        create_model(name, 2, pretrained=True)


@pytest.mark.parametrize(
    "name", ["resnet18", "efficientnet_b0", "vit_tiny_patch16_224", "tv:resnet18"]
)
def test_library_backbones_from_scratch_take_grey_images(name: str) -> None:
    model = create_model(name, 2, pretrained=False, image_size=32)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 2)
    assert model.pretrained_source == "none"


def test_unknown_names_suggest_close_matches() -> None:
    with pytest.raises(ModelError, match="Did you mean: resnet18"):
        get_architecture("resnt18")
    with pytest.raises(ModelError, match="tv:mobilenet_v2"):
        get_architecture("tv:mobilenet_v22")


def test_too_small_image_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="cannot take 8x8 px"):
        create_model("vit_tiny_patch16_224", 2, pretrained=False, image_size=8)
