from __future__ import annotations

import pytest
import torch

from pneumobench.errors import ModelError
from pneumobench.registry import create_model, get_architecture, list_models, register_model
from pneumobench.registry.core import _REGISTRY, Backbone
from tests.conftest import SHARED_WEIGHTS, requires_shared_weights

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


def test_register_model_decorator_adds_an_entry() -> None:
    @register_model(family="test")
    def _tiny_test_net(pretrained: bool | str, in_chans: int, image_size: int) -> Backbone:
        """A test network."""
        return Backbone(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4)))

    try:
        assert "_tiny_test_net" in list_models("_tiny*")
        assert get_architecture("_tiny_test_net").description == "A test network."
        model = create_model("_tiny_test_net", 3, image_size=8)
        assert model(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    finally:
        _REGISTRY.pop("_tiny_test_net")


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


def test_unfetchable_torchvision_weights_name_the_ways_out(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", _offline)
    with pytest.raises(ModelError) as info:
        create_model("tv:resnet18", 2, pretrained=True)
    message = str(info.value)
    assert "tv:resnet18" in message and "pretrained: false" in message
    assert "resnet18-f37072fd.pth" in message and "never falls back" in message


def test_unfetchable_timm_weights_name_the_ways_out(monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-cache")
    with pytest.raises(ModelError, match="pretrained: false"):
        create_model("resnet18", 2, pretrained=True)


def _offline(*args, **kwargs):
    raise OSError("<urlopen error [Errno -2] Name or service not known>")


@requires_shared_weights
def test_torchvision_pretrained_mobilenet_v2_loads_offline_and_is_adapted_to_grey(
    monkeypatch,
) -> None:
    from torchvision.models import mobilenet_v2

    monkeypatch.setenv("TORCH_HOME", str(SHARED_WEIGHTS))
    model = create_model("tv:mobilenet_v2", 2, pretrained="IMAGENET1K_V1", image_size=32)
    assert model.pretrained_source == "torchvision:MobileNet_V2_Weights.IMAGENET1K_V1"
    reference = mobilenet_v2(weights="IMAGENET1K_V1")
    rgb = reference.features[0][0].weight
    grey = model.backbone.features[0][0].weight
    assert grey.shape == (32, 1, 3, 3)
    torch.testing.assert_close(grey, rgb.sum(1, keepdim=True))
    torch.testing.assert_close(
        model.backbone.features[5].conv[0][0].weight, reference.features[5].conv[0][0].weight
    )
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 2)
    assert model.backbone.classifier[1].__class__.__name__ == "Identity"
