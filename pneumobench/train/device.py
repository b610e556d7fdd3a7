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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX tiles).

    Without it oneDNN emulates bf16, and a training step is an order of magnitude slower than in
    fp32 (resnet18 at 64 px, batch 64, channels_last, 2 AMD EPYC AVX2 cores: 8.1 s against 0.85 s;
    benchmarks/results/layout-precision-cpu-avx2.json), so ``bf16`` falls back to fp32 there
    (:func:`autocast_dtype`). PyTorch keeps these probes private; a build without them counts as
    having no native bf16.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def cuda_has_native_bf16(device: torch.device) -> bool:
    """Whether the CUDA device computes bf16 in hardware (compute capability 8.0, Ampere, or
    newer). ``torch.cuda.is_bf16_supported()`` answers True with emulation included and for the
    current device rather than this one: on a T4 it would choose an emulated bf16."""
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: plain fp32), the one place a
    precision is decided. ``auto``: bf16 where the GPU supports it, else fp16 (with a grad
    scaler), and fp32 on CPU; ``bf16``: bf16 on a GPU and on a CPU with native bf16, fp32 on any
    other CPU (see :func:`cpu_has_native_bf16`); ``fp32``: never autocast."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        native = device.type != "cpu" or cpu_has_native_bf16()
        return torch.bfloat16 if native else None
    if device.type != "cuda":
        return None
    return torch.bfloat16 if cuda_has_native_bf16(device) else torch.float16


def effective_precision(device: torch.device, precision: str = "auto") -> str:
    """What the training steps of ``precision`` compute in on ``device``: fp32, bf16 or fp16
    (logged with every model run, since ``auto`` and ``bf16`` depend on the hardware)."""
    dtype = autocast_dtype(device, precision)
    if dtype is None and device.type == "cuda":
        return "tf32"  # configure_backends lets CUDA matmuls and convolutions use TF32
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def precision_fallback_note(label: str, device: torch.device, precision: str) -> str | None:
    """One line for the console where ``precision`` asks for bf16 that this device does not
    compute natively (the run trains in fp32 instead); None where nothing falls back."""
    if precision != "bf16" or effective_precision(device, precision) == "bf16":
        return None
    return (
        f"{label}: protocol.precision bf16 asked for, but this CPU has no native bf16 "
        "(AVX512-BF16 or AMX), where emulated bf16 trains many times slower: training in fp32"
    )


@contextlib.contextmanager
def autocast(device: torch.device, precision: str = "auto") -> Iterator[None]:
    """Autocast to :func:`autocast_dtype` (nothing when that is fp32)."""
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


ALLOCATION_FAILURES = ("out of memory", "ALLOC_FAILED", "CUBLAS_STATUS_ALLOC", "cudaErrorMemory")


def is_allocation_failure(exc: BaseException) -> bool:
    """A device ran out of memory: ``torch.OutOfMemoryError``, or the plain ``RuntimeError``
    (``AcceleratorError``) cuBLAS, cuDNN and the CUDA allocator raise for the same cause."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in ALLOCATION_FAILURES)


def release_memory(device: torch.device) -> None:
    """Give cached blocks back after an allocation failure (before a retry)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """A batch of images in NHWC memory layout, the layout the model's weights are kept in:
    convolutions run faster in it on GPUs and on CPUs alike (measured by
    ``benchmarks/layout_precision.py``; figures in the docs), with the same numbers up to float
    rounding."""
    return x.contiguous(memory_format=torch.channels_last)


def hardware(device: torch.device) -> dict[str, str]:
    """What the numbers were computed on: ``name`` (the GPU's model, or the CPU's), and on CUDA
    the ``cuda`` and ``cudnn`` versions and whether ``tf32`` is on."""
    if device.type != "cuda":
        import platform

        return {"name": platform.processor() or platform.machine()}
    index = device.index if device.index is not None else torch.cuda.current_device()
    return {
        "name": torch.cuda.get_device_name(index),
        "cuda": str(torch.version.cuda),
        "cudnn": str(torch.backends.cudnn.version()),
        "tf32": str(torch.backends.cuda.matmul.allow_tf32),
    }


def gpu_uuid(device: torch.device) -> str | None:
    """The CUDA device's UUID (what NVML names it by too); None on CPU or where unknown."""
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return str(uuid) if uuid is not None else None


@contextlib.contextmanager
def exact_fp32(device: torch.device) -> Iterator[None]:
    """TF32 off inside the block (CUDA): what CPU predict, export and serving compute."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def configure_backends(device: torch.device) -> None:
    """cuDNN autotuning and TF32 matmuls on CUDA."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
