"""Tests of pneumobench/train/device.py."""

from __future__ import annotations

import torch

from pneumobench.registry import create_model
from pneumobench.train.device import resolve_device
from tests.train.conftest import fit_tiny


def test_bf16_precision_trains_under_bf16_autocast_and_predicts_in_fp32(tiny, monkeypatch) -> None:
    from pneumobench.data.batches import BatchFeeder
    from pneumobench.train import device
    from pneumobench.train.device import autocast_dtype
    from pneumobench.train.protocol import predict

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)  # as on AVX512-BF16 / AMX
    cpu = resolve_device("cpu")
    assert autocast_dtype(cpu, "auto") is None and autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cpu, "bf16") == torch.bfloat16
    config, data = tiny
    model = create_model("simple_cnn", 2, image_size=32)
    seen: list[torch.dtype] = []
    model.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    result = fit_tiny(config, data, model, max_epochs=1, precision="bf16")
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
    from pneumobench.train import device
    from pneumobench.train.device import (
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
    fit_tiny(config, data, model, max_epochs=1, precision="bf16")
    assert seen and set(seen) == {torch.float32}
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert precision_fallback_note("resnet18-scratch", cpu, "bf16") is None
