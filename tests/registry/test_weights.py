"""Tests of pneumobench/registry/weights.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from pneumobench.errors import ModelError
from pneumobench.registry import create_model
from tests.conftest import SHARED_WEIGHTS, requires_shared_weights


def _offline(*args, **kwargs):
    raise OSError("<urlopen error [Errno -2] Name or service not known>")


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


def test_timm_weights_offline_fail_in_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pneumobench.errors import ModelError
    from pneumobench.registry import create_model

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ModelError, match="could not load pretrained weights for 'timm:resnet18'"):
        create_model("resnet18", 2, pretrained=True, image_size=32)
    assert time.monotonic() - started < 20
