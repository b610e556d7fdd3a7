"""``pneumobench ui``: MLflow's UI on the experiment's store, opened on the final models.

Starts ``mlflow ui`` for a local store (a tracking server is only linked), waits until it
answers, refreshes the runs view (final models only, the leaderboard's columns as
``value [95% interval]`` at 3 decimals) and prints its address; ``--open`` opens a browser,
``--optuna`` starts optuna-dashboard on the studies beside it. Ctrl-C stops both.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from rich.console import Console

from pneumobench.commands.options import add_store_options
from pneumobench.errors import ConfigError

START_TIMEOUT_S = 300  # a cold MLflow start on a busy 2-core machine takes minutes


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``ui`` and its options."""
    parser = sub.add_parser("ui", help="open MLflow's UI on the experiment's final models")
    add_store_options(parser, storage=True)
    parser.add_argument("--port", type=int, default=5000, help="MLflow UI port (default 5000)")
    parser.add_argument("--open", action="store_true", help="open the view in a browser")
    parser.add_argument(
        "--optuna", action="store_true", help="also start optuna-dashboard (port --port + 1)"
    )
    return parser


def _wait(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"{what} exited with code {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise ConfigError(f"{what} did not answer at {url} within {START_TIMEOUT_S} s")


def main(args: argparse.Namespace, console: Console) -> int:
    """Serve until Ctrl-C; 0 on a clean stop."""
    from pneumobench.commands.store import resolve_store
    from pneumobench.tracking.models import connect
    from pneumobench.tracking.store import client, find_experiment
    from pneumobench.tracking.ui import install_view, refresh_display_tags, runs_url

    store = resolve_store(args, needs_storage=args.optuna)
    connect(store.uri)
    experiment = find_experiment(client(store.uri), store.name, store.uri)
    install_view(experiment.experiment_id)
    n = refresh_display_tags(experiment.experiment_id)
    procs: list[subprocess.Popen] = []
    try:
        if store.uri.startswith("http"):
            base = store.uri.rstrip("/")
        else:
            base = f"http://127.0.0.1:{args.port}"
            command = [
                sys.executable,
                "-m",
                "mlflow",
                "ui",
                "--backend-store-uri",
                store.uri,
                "--host",
                "127.0.0.1",
                "--port",
                str(args.port),
                "--workers",
                "1",  # one user: one worker starts in a third of the time of four
            ]
            log = Path(".pneumobench") / "mlflow-ui.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w") as out:  # MLflow's own chatter stays out of the console
                procs.append(
                    subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
                )
            console.print(f"starting MLflow UI on {base} (store {store.uri}; its log: {log}) ...")
            _wait(f"{base}/health", procs[-1], "mlflow ui")
        url = runs_url(experiment.experiment_id, base)
        console.print(f"[bold]final models of {store.name}[/] ({n} runs):")
        console.print(url, soft_wrap=True)  # whole, so a terminal can open it
        if args.optuna:
            procs.append(_optuna(store.storage, args.port + 1, console))
        if args.open:
            import webbrowser

            webbrowser.open(url)
        if not procs:
            return 0
        console.print("Ctrl-C stops")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return 1  # a server stopped by itself
    except KeyboardInterrupt:
        console.print("stopping")
        return 0
    finally:
        _stop(procs)


def _optuna(storage: str | None, port: int, console: Console) -> subprocess.Popen:
    if not storage:
        raise ConfigError("--optuna: no Optuna storage (search.storage, or --storage)")
    exe = shutil.which("optuna-dashboard")
    if exe is None:
        raise ConfigError("--optuna needs optuna-dashboard: pip install optuna-dashboard")
    proc = subprocess.Popen(
        [exe, storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait(f"http://127.0.0.1:{port}/", proc, "optuna-dashboard")
    console.print(f"studies: http://127.0.0.1:{port}/")
    return proc


def _stop(procs: list[subprocess.Popen]) -> None:
    """Each server and its worker processes (their own process group) end."""
    import os
    import signal

    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
