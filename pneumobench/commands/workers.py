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
STOP_SECONDS = 120  # how long stopping workers may take before they are killed


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
    """Start every worker (``pneumobench`` with ``argv``), wait for all; the worst exit code.

    Ctrl-C (the terminal signals every worker itself) or a SIGTERM / SIGINT to this process
    alone: every worker still running is given SIGINT, each stops cleanly (its interrupted trial
    marked failed, its runs closed), and KeyboardInterrupt is raised again once all have exited
    (a worker still busy after ``STOP_SECONDS`` is killed; the next start reaps what it left)."""
    import signal

    logs = Path(".pneumobench") / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[subprocess.Popen, object]] = []
    try:
        for share in shares:
            procs.append(_start_worker(share, len(shares), argv, logs))
            where = f"GPU {share.gpu}" if share.gpu is not None else f"{share.threads} thread(s)"
            shown = "this terminal" if share.index == 0 else f"{logs}/worker-{share.index + 1}.log"
            console.print(f"worker {share.index + 1}/{len(shares)}: {where}, output: {shown}")
            time.sleep(0.5)  # the first worker creates the studies and parents; the rest join
        codes = [proc.wait() for proc, _ in procs]
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: every worker stops cleanly, then this
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_SECONDS
        for proc, _ in procs:
            _wait_through_signals(proc, deadline)
        raise
    finally:
        for _, log in procs:
            if log is not None:
                log.close()
    worst = max(codes, key=lambda c: (c != 0, abs(c)))
    if worst == 130:  # a worker was stopped (a signal to it alone): say how to resume
        raise KeyboardInterrupt
    console.print(f"{len(shares)} worker(s) done, exit codes {codes}; logs in {logs}")
    return worst


def _start_worker(
    share: WorkerShare, n: int, argv: list[str], logs: Path
) -> tuple[subprocess.Popen, object]:
    """One worker process with its share in its environment; worker 1 writes to the terminal."""
    env = {
        **os.environ,
        THREADS_ENV: str(share.threads),
        "OMP_NUM_THREADS": str(share.threads),
        "MKL_NUM_THREADS": str(share.threads),
        WORKER_ENV: f"{share.index + 1}/{n}",
    }
    command = [sys.executable, "-m", "pneumobench", *argv]
    if share.gpu is not None:  # its one visible GPU is cuda:0 inside it
        env["CUDA_VISIBLE_DEVICES"] = share.gpu
        command += ["--device", "cuda"]
    log = None if share.index == 0 else (logs / f"worker-{share.index + 1}.log").open("w")
    return subprocess.Popen(command, env=env, stdout=log, stderr=log), log


def _wait_through_signals(proc: subprocess.Popen, deadline: float) -> None:
    """Wait for a stopping worker until ``deadline``, then kill it; more Ctrl-C meanwhile (an
    impatient user) neither abandons the worker nor cuts its cleanup short."""
    while True:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            return
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return
        except KeyboardInterrupt:
            continue
