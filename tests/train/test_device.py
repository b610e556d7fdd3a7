"""Tests of pneumobench/train/device.py."""

from __future__ import annotations

import pytest
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


def test_allocation_failures_are_recognised_however_the_library_says_it() -> None:
    from pneumobench.train.device import is_allocation_failure

    assert is_allocation_failure(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_allocation_failure(
        RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate")
    )
    assert is_allocation_failure(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert not is_allocation_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_an_out_of_memory_trial_names_the_step_and_the_batch_size() -> None:
    from pneumobench.config import ProtocolConfig
    from pneumobench.search.objective import failure_reason

    def predict() -> None:
        raise RuntimeError("CUDNN_STATUS_ALLOC_FAILED")

    def train_step() -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")

    protocol = ProtocolConfig(batch_size=48, eval_batch_size=256)
    for step, expected in ((predict, "eval_batch_size 256"), (train_step, "batch_size 48")):
        try:
            step()
        except RuntimeError as exc:
            assert expected in failure_reason(exc, protocol)


def test_the_final_evaluation_retries_at_a_smaller_batch_after_running_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    from pneumobench.benchmark import final

    seen = []

    def fake_predict(model, feeder, batch_size, device, tta="none", precision="auto"):
        seen.append((batch_size, precision))
        if batch_size > 128:
            raise RuntimeError("CUBLAS_STATUS_ALLOC_FAILED")
        return np.ones((3, 2)) / 2, 0.0

    monkeypatch.setattr(final, "predict", fake_predict)
    probs = final.predict_with_retries(None, None, 512, torch.device("cpu"), "none")
    assert probs.shape == (3, 2)
    assert seen == [(512, "fp32"), (256, "fp32"), (128, "fp32")]  # fp32: as deployed


def test_native_bf16_is_asked_of_the_chosen_gpu_without_emulation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pneumobench.train import device as D

    asked = []

    def capability(dev):
        asked.append(dev)
        return (7, 5)  # a T4: no native bf16, emulation would say yes

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    cuda1 = torch.device("cuda:1")
    assert D.autocast_dtype(cuda1, "auto") == torch.float16  # fp16 with a grad scaler
    assert asked == [cuda1]
    assert D.effective_precision(cuda1, "fp32") == "tf32"  # what a CUDA fp32 step computes
