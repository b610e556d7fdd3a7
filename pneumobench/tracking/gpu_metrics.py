"""MLflow's GPU system metrics of this worker's GPU only.

MLflow's ``GPUMonitor`` samples every GPU NVML sees, and NVML ignores ``CUDA_VISIBLE_DEVICES``:
on a node shared by several workers each trial run would carry the others' GPUs. Once told this
worker's GPU (by its UUID, the one name CUDA and NVML share), the monitor keeps only that one;
its metrics are then ``system/gpu_0_utilization_percentage``, ``system/gpu_0_memory_usage_megabytes``
and the like, ``gpu_0`` meaning this worker's GPU (its model is the run's ``hardware`` tag).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _normal(uuid: str) -> str:
    return str(uuid).lower().removeprefix("gpu-")


def _nvml_uuid(handle: Any) -> str:
    import pynvml

    value = pynvml.nvmlDeviceGetUUID(handle)
    return value.decode() if isinstance(value, bytes) else str(value)


def only_this_gpu(
    uuid: str | None, monitor: type | None = None, uuid_of: Callable[[Any], str] = _nvml_uuid
) -> None:
    """From now on, GPU monitors of this process sample only the GPU with ``uuid`` (None:
    nothing changes). Idempotent; ``monitor`` and ``uuid_of`` are for tests."""
    if uuid is None:
        return
    if monitor is None:
        from mlflow.system_metrics.metrics import gpu_monitor

        monitor = gpu_monitor.GPUMonitor
    original = monitor.__dict__.get("_pneumobench_init", monitor.__init__)
    wanted = _normal(uuid)

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        mine = [h for h in self.gpu_handles if _normal(uuid_of(h)) == wanted]
        if mine:
            self.gpu_handles, self.num_gpus = mine, len(mine)

    monitor._pneumobench_init = original
    monitor.__init__ = init
