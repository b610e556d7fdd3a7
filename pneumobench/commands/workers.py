"""``pneumobench run CONFIG --workers N|auto``: N worker processes on the config's studies, as if
N commands had been started by hand (the same claims share trials, parents and final
evaluations; exactly ``n_trials`` finish per model).

Each worker is ``pneumobench run`` itself, with its share of the machine in its environment:
on GPUs one GPU (``CUDA_VISIBLE_DEVICES``) per worker, ``--workers-per-gpu K`` packing K small
models onto each; on CPU the cores split evenly (``torch`` threads, OpenMP and MKL pools).
``auto``: one worker per visible GPU (times K), else one per four CPU cores (at least one).
Worker 1 draws the progress display on the terminal; the others' full output is in
``.pneumobench/workers/worker-<i>.log``. Ctrl-C (or a SIGTERM to this command) is passed to
every worker; each stops cleanly, and the same command resumes.
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
    if per_gpu < 1:
        raise ConfigError(f"--workers-per-gpu {per_gpu}: at least 1")
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
    (130 after Ctrl-C or SIGTERM, which every worker is given)."""
    import signal

    logs = Path(".pneumobench") / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[subprocess.Popen, object]] = []
    for share in shares:
        env = {
            **os.environ,
            THREADS_ENV: str(share.threads),
            "OMP_NUM_THREADS": str(share.threads),
            "MKL_NUM_THREADS": str(share.threads),
            WORKER_ENV: f"{share.index + 1}/{len(shares)}",
        }
        command = [sys.executable, "-m", "pneumobench", *argv]
        if share.gpu is not None:  # its one visible GPU is cuda:0 inside it
            env["CUDA_VISIBLE_DEVICES"] = share.gpu
            command += ["--device", "cuda"]
        log = None if share.index == 0 else (logs / f"worker-{share.index + 1}.log").open("w")
        procs.append((subprocess.Popen(command, env=env, stdout=log, stderr=log), log))
        where = f"GPU {share.gpu}" if share.gpu is not None else f"{share.threads} thread(s)"
        shown = "this terminal" if log is None else f"{logs}/worker-{share.index + 1}.log"
        console.print(f"worker {share.index + 1}/{len(shares)}: {where}, output: {shown}")
        time.sleep(0.5)  # the first worker creates the studies and parents; the rest join
    try:
        codes = [proc.wait() for proc, _ in procs]
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: every worker stops cleanly, then this
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 120
        for proc, _ in procs:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        return 130
    finally:
        for _, log in procs:
            if log is not None:
                log.close()
    worst = max(codes, key=lambda c: (c != 0, abs(c)))
    console.print(f"{len(shares)} worker(s) done, exit codes {codes}; logs in {logs}")
    return worst
