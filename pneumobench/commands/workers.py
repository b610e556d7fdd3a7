"""``pneumobench run CONFIG --workers N|auto``: N worker processes on the config's studies, as if
N commands had been started by hand (the same claims share trials, parents and final
evaluations; exactly ``n_trials`` finish per model).

Each worker is ``pneumobench run`` itself, with its share of the machine in its environment:
on GPUs one GPU (``CUDA_VISIBLE_DEVICES``) per worker, ``--workers-per-gpu K`` packing K small
models onto each; on CPU the cores split evenly (``torch`` threads, OpenMP and MKL pools).
``auto``: one worker per visible GPU (times K), else one per four CPU cores (at least one).
Worker 1 draws the progress display; every worker's full output is in
``.pneumobench/workers/worker-<i>.log``. Ctrl-C reaches every worker (they share the terminal's
process group); each stops cleanly, and the same command resumes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from pneumobench.errors import ConfigError

THREADS_ENV = "PNEUMOBENCH_THREADS"  # a worker's share of the CPU cores (torch threads)
WORKER_ENV = "PNEUMOBENCH_WORKER"  # i/N of a worker started by --workers
CORES_PER_CPU_WORKER = 4


@dataclass(frozen=True)
class WorkerShare:
    """What one worker process gets."""

    index: int
    gpu: str | None  # its CUDA_VISIBLE_DEVICES, None on CPU
    threads: int


def plan_workers(workers: str, per_gpu: int, gpus: list[str], cores: int) -> list[WorkerShare]:
    """The workers ``--workers`` asks for, each with its GPU or its share of the cores."""
    if workers == "auto":
        n = len(gpus) * per_gpu if gpus else max(1, cores // CORES_PER_CPU_WORKER)
    else:
        try:
            n = int(workers)
        except ValueError:
            raise ConfigError(f"--workers {workers!r}: give a number or auto") from None
        if n < 1:
            raise ConfigError(f"--workers {n}: at least 1")
    if gpus:
        return [
            WorkerShare(i, gpus[(i // per_gpu) % len(gpus)], max(1, cores // n)) for i in range(n)
        ]
    return [WorkerShare(i, None, max(1, cores // n)) for i in range(n)]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return []
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def run_workers(shares: list[WorkerShare], argv: list[str], console: Console) -> int:
    """Start every worker (``pneumobench`` with ``argv``), wait for all; the worst exit code
    (130 after Ctrl-C)."""
    logs = Path(".pneumobench") / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pneumobench", *argv]
    procs = []
    for share in shares:
        env = {
            **os.environ,
            THREADS_ENV: str(share.threads),
            "OMP_NUM_THREADS": str(share.threads),
            "MKL_NUM_THREADS": str(share.threads),
            WORKER_ENV: f"{share.index + 1}/{len(shares)}",
        }
        if share.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = share.gpu
        log = (logs / f"worker-{share.index + 1}.log").open("w")
        first = share.index == 0  # worker 1 draws on this terminal, and logs too (via tee)
        procs.append(
            (
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=None if first else log,
                    stderr=None if first else log,
                ),
                log,
            )
        )
        where = f"GPU {share.gpu}" if share.gpu is not None else f"{share.threads} thread(s)"
        console.print(f"worker {share.index + 1}/{len(shares)}: {where}, log {log.name}")
        time.sleep(0.5)  # the first worker creates the studies and parents; the rest join
    codes = []
    try:
        for proc, log in procs:
            codes.append(proc.wait())
            log.close()
    except KeyboardInterrupt:  # every worker got the same Ctrl-C: let each finish cleanly
        for proc, log in procs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        return 130
    worst = max(codes, key=lambda c: (c != 0, abs(c)))
    console.print(
        f"{len(shares)} worker(s) done, exit codes {codes}; their logs: {logs}/worker-<i>.log"
    )
    return worst
