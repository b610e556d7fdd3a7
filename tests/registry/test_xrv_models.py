"""Tests of pneumobench/registry/xrv_models.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from pneumobench.registry import factory


def _xrv_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "xrv-cache"
    monkeypatch.setenv("PNEUMOBENCH_XRV_CACHE", str(cache))
    return cache


def test_xrv_densenet_loads_a_locally_saved_file_from_its_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torchxrayvision's own loading path (its DenseNet reads a saved model from the cache)."""
    from pneumobench.registry.xrv_models import weights_file, xrv_module

    cache = _xrv_cache(tmp_path, monkeypatch)
    xrv = xrv_module()
    torch.manual_seed(0)
    saved = xrv.models.DenseNet(weights=None, num_classes=18)
    target = Path(weights_file("densenet121-res224-all"))
    assert target.parent == cache
    cache.mkdir()
    torch.save(saved, target)  # the file format torchxrayvision publishes for its DenseNets
    model = factory.create_model("xrv:densenet121-res224-all", 2, image_size=32)
    assert model.pretrained_source == "torchxrayvision:densenet121-res224-all"
    first = dict(model.backbone.named_parameters())["features.conv0.weight"]
    assert torch.equal(first, saved.features.conv0.weight)
    # torchxrayvision's input scaling: [0, 1] images become [-1024, 1024]
    assert float(((torch.ones(1) - model.mean) / model.std).max()) == pytest.approx(1024)
    assert float(((torch.zeros(1) - model.mean) / model.std).min()) == pytest.approx(-1024)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 2)


def test_xrv_resnet_loads_a_saved_state_dict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    from pneumobench.registry.xrv_models import weights_file

    cache = _xrv_cache(tmp_path, monkeypatch)
    cache.mkdir()
    net = torchvision.models.resnet50(weights=None, num_classes=18)
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    torch.save(net.state_dict(), weights_file("resnet50-res512-all"))
    model = factory.create_model("xrv:resnet50-res512-all", 2, image_size=32)
    assert torch.equal(model.backbone.conv1.weight, net.conv1.weight)
    assert model.backbone(torch.zeros(1, 1, 32, 32)).shape == (1, 2048)


def test_xrv_offline_without_a_cached_file_fails_fast_and_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pneumobench.errors import ModelError
    from pneumobench.registry.xrv_models import weights_file

    _xrv_cache(tmp_path, monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens: offline for sure
    started = time.monotonic()
    with pytest.raises(ModelError) as info:
        factory.create_model("xrv:densenet121-res224-all", 2, image_size=32)
    assert time.monotonic() - started < 30
    message = str(info.value)
    assert "xrv:densenet121-res224-all" in message
    assert weights_file("densenet121-res224-all") in message
    assert "pretrained: false" in message


def test_xrv_unknown_weights_suggest_close_names() -> None:
    from pneumobench.errors import ModelError

    with pytest.raises(ModelError, match="Did you mean: xrv:densenet121-res224-all"):
        factory.get_architecture("xrv:densenet121-res224-al")
