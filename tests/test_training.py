from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pneumobench.benchmark.device import resolve_device
from pneumobench.benchmark.training import DivergedError, fit
from pneumobench.config import parse_config
from pneumobench.data import prepare_data
from pneumobench.data.batches import random_affine
from pneumobench.registry import create_model
from tests.conftest import tiny_config


@pytest.fixture
def tiny(fake_kermany: Path):
    config = parse_config(tiny_config(fake_kermany))
    return config, prepare_data(config)


def _fit(config, data, model, **protocol):
    return fit(
        model,
        data,
        config.protocol.model_copy(update=protocol),
        augment=config.data.augment,
        objective="val_f1",
        direction="maximize",
        device=resolve_device("cpu"),
        seed=1,
    )


def test_fit_logs_every_epoch_and_restores_the_best_checkpoint(tiny) -> None:
    config, data = tiny
    model = create_model("simple_cnn", 2, dropout=0.1, image_size=32)
    result = _fit(config, data, model, max_epochs=4, patience=4, lr=3e-3)
    assert len(result.history) == 4
    assert result.best_score == max(h["val_f1"] for h in result.history)
    assert result.best_epoch == 1 + [h["val_f1"] for h in result.history].index(result.best_score)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, result.state_dict[key])
    assert {"train_loss", "val_loss", "val_auc", "lr", "epoch_seconds", "images_per_second"} <= set(
        result.history[0]
    )


def test_early_stopping_after_patience(tiny) -> None:
    config, data = tiny
    model = create_model("simple_cnn", 2, image_size=32)
    result = _fit(
        config, data, model, max_epochs=30, patience=1, lr=1e-7
    )  # cannot improve for long
    assert len(result.history) < 30 and result.stopped_early


def test_pretrained_backbone_is_frozen_then_trained(tiny) -> None:
    config, data = tiny
    model = create_model("simple_cnn", 2, image_size=32)
    model.pretrained_source = "test"  # treated as pretrained by the protocol
    before = [p.detach().clone() for p in model.backbone_parameters()]
    bn = model.backbone[1]
    running = bn.running_mean.clone()
    head_before = [p.detach().clone() for p in model.head_parameters()]
    result = _fit(config, data, model, max_epochs=1, freeze_epochs=1, patience=1)
    assert result.history[0]["backbone_frozen"] == 1.0
    for b, p in zip(before, model.backbone_parameters(), strict=True):
        torch.testing.assert_close(b, p)
    torch.testing.assert_close(bn.running_mean, running)  # BatchNorm statistics frozen too
    assert any(
        not torch.equal(b, p) for b, p in zip(head_before, model.head_parameters(), strict=True)
    )

    result = _fit(config, data, model, max_epochs=2, freeze_epochs=1, patience=2)
    assert [h["backbone_frozen"] for h in result.history] == [1.0, 0.0]
    assert result.history[1]["lr"] < result.history[0]["lr"]  # cosine schedule


def test_nan_loss_is_reported_as_divergence(tiny) -> None:
    config, data = tiny
    model = create_model("simple_cnn", 2, image_size=32)
    with torch.no_grad():
        model.head[1].weight.fill_(float("nan"))
    with pytest.raises(DivergedError, match="nan"):
        _fit(config, data, model, max_epochs=1)


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


def test_bf16_precision_trains_under_bf16_autocast_and_predicts_in_fp32(tiny, monkeypatch) -> None:
    from pneumobench.benchmark import device
    from pneumobench.benchmark.device import autocast_dtype
    from pneumobench.benchmark.training import predict
    from pneumobench.data.batches import BatchFeeder

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)  # as on AVX512-BF16 / AMX
    cpu = resolve_device("cpu")
    assert autocast_dtype(cpu, "auto") is None and autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") == torch.bfloat16
    config, data = tiny
    model = create_model("simple_cnn", 2, image_size=32)
    seen: list[torch.dtype] = []
    model.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    result = _fit(config, data, model, max_epochs=1, precision="bf16")
    assert torch.bfloat16 in seen  # the training steps
    assert seen[-1] == torch.float32  # validation: predictions keep auto's precision (fp32)
    assert all(
        v.dtype == torch.float32 for v in result.state_dict.values() if v.is_floating_point()
    )
    seen.clear()
    probs, _ = predict(model, BatchFeeder(data.test, cpu), 64, cpu)
    assert seen == [torch.float32] * len(seen) and probs.dtype.name == "float64"


def test_bf16_on_a_cpu_without_native_bf16_trains_in_fp32_and_says_so(tiny, monkeypatch) -> None:
    """Emulated bf16 is 5-12x slower than fp32 on an AVX2 CPU: a config that asks for bf16 (the
    default benchmark's resnet18) must not turn a 20-minute run into hours there."""
    from pneumobench.benchmark import device
    from pneumobench.benchmark.device import (
        autocast_dtype,
        effective_precision,
        precision_fallback_note,
    )

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    cpu = resolve_device("cpu")
    assert autocast_dtype(cpu, "bf16") is None and effective_precision(cpu, "bf16") == "fp32"
    note = precision_fallback_note("resnet18-scratch", cpu, "bf16")
    assert note is not None and "resnet18-scratch" in note and "fp32" in note
    assert precision_fallback_note("resnet18-scratch", cpu, "auto") is None
    assert effective_precision(torch.device("cuda"), "bf16") == "bf16"  # GPUs are not probed
    config, data = tiny
    model = create_model("simple_cnn", 2, image_size=32)
    seen: list[torch.dtype] = []
    model.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    _fit(config, data, model, max_epochs=1, precision="bf16")
    assert seen and set(seen) == {torch.float32}
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert precision_fallback_note("resnet18-scratch", cpu, "bf16") is None
