"""Training-step time of the default benchmark's networks by memory layout and precision.

Why pneumobench keeps weights and batches in channels_last (NHWC) on every device, and when
``protocol.precision: bf16`` pays on a CPU (natively: resnet18 at 64 px; emulated: never): one
AdamW training step
(forward, backward, update) on a batch of 64 single-channel images, in four variants (NCHW fp32,
NCHW bf16 autocast, NHWC fp32, NHWC bf16 autocast), at 32 and 64 px, timed in one run so the
ratios are comparable on a noisy machine (2 warm-up steps, then the mean of ``--steps``).

``uv run python benchmarks/layout_precision.py [--steps 5] [--threads 2] [--out NAME.json]``;
prints a table and writes ``benchmarks/results/layout-precision-cpu.json`` (or ``--out``). The
report says whether the CPU computes bf16 natively (AVX512-BF16 or AMX): where it does not, the
bf16 columns measure oneDNN's emulation, which is why ``precision: bf16`` trains in fp32 there.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pneumobench.registry import create_model
from pneumobench.train.device import cpu_has_native_bf16

MODELS = ("simple_cnn", "resnet18", "tv:mobilenet_v2")
VARIANTS = {  # name: (channels_last, bf16)
    "nchw_fp32": (False, False),
    "nchw_bf16": (False, True),
    "nhwc_fp32": (True, False),
    "nhwc_bf16": (True, True),
}


def step_ms(name: str, size: int, channels_last: bool, bf16: bool, steps: int) -> float:
    """Mean milliseconds of one training step."""
    torch.manual_seed(0)
    model = create_model(name, 2, pretrained=False, image_size=size)
    x = torch.rand(64, 1, size, size)
    y = torch.randint(0, 2, (64,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps * 1000


def _cpu_model() -> str:
    """The CPU's model name as Linux reports it (platform.processor() is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="layout-precision-cpu.json", help="file in results/")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for size in (32, 64):
        for name in MODELS:
            times = {v: step_ms(name, size, *flags, args.steps) for v, flags in VARIANTS.items()}
            row = {
                "model": name,
                "size": size,
                **{f"{v}_ms": round(t, 1) for v, t in times.items()},
            }
            row["speedup_nhwc_fp32"] = round(times["nchw_fp32"] / times["nhwc_fp32"], 2)
            row["speedup_nhwc_bf16"] = round(times["nchw_fp32"] / times["nhwc_bf16"], 2)
            rows.append(row)
            print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    out = Path(__file__).resolve().parent / "results" / args.out
    out.write_text(
        json.dumps(
            {
                "what": "ms per AdamW training step, batch 64, 1 channel; mean of "
                f"{args.steps} steps after 2 warm-up steps",
                "threads": args.threads,
                "cpu": platform.processor() or platform.machine(),
                "cpu_model": _cpu_model(),
                "native_bf16": cpu_has_native_bf16(),
                "torch": torch.__version__,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
