"""Choosing where to train, and how fast the hardware allows (precision, layout)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from pneumobench.errors import ConfigError


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks CUDA when PyTorch sees a GPU; an unavailable device is a ConfigError."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device '{spec}' asked for, but PyTorch sees no CUDA GPU: use --device cpu"
        )
    device = torch.device(spec)
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise ConfigError(f"device '{spec}': only {torch.cuda.device_count()} GPU(s) visible")
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16 (with a grad scaler); fp32 on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """Mixed precision on CUDA (bf16, else fp16); nothing on CPU."""
    dtype = autocast_dtype(device)
    if dtype is None:
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


def configure_backends(device: torch.device) -> None:
    """cuDNN autotuning and TF32 matmuls on CUDA."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
