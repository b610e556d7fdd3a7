"""Tests of pneumobench/tracking/store.py."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from pneumobench.commands.main import main
from pneumobench.config import parse_config
from pneumobench.data import prepare_data
from pneumobench.text import command
from tests.conftest import ROOT, tiny_config, write_config
from tests.servers import silent_port

_INIT = """
from pneumobench.search.coordination import Claims
from pneumobench.search.study import storage_for
from pneumobench.config import parse_config
from pneumobench.tracking.store import open_experiment
config = parse_config({"name": "twins", "data": {"path": "x"}, "models": ["simple_cnn"],
    "search": {"storage": "sqlite:///optuna.db"}, "tracking": {"uri": "sqlite:///mlflow.db"}})
Claims(storage_for(config).engine)
print(open_experiment(config.name, config.tracking.uri))
"""


@pytest.mark.slow
def test_two_runs_started_together_in_a_fresh_folder_both_start(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    for attempt in range(2):
        folder = tmp_path / f"fresh{attempt}"
        folder.mkdir()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _INIT],
                cwd=folder,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        results = [p.communicate(timeout=180) for p in procs]
        for proc, (_, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err[-3000:]
        assert results[0][0].strip() == results[1][0].strip()  # one experiment, one id


def test_artifacts_go_beside_the_store_and_unwritable_folders_are_named(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.tracking.store import open_experiment

    stores = tmp_path / "stores"
    uri = f"sqlite:///{stores / 'mlflow.db'}"
    experiment_id = open_experiment("elsewhere", uri)
    location = mlflow.MlflowClient(uri).get_experiment(experiment_id).artifact_location
    assert location == (stores / "mlruns").as_uri()

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    raw = tiny_config(fake_kermany)
    raw["data"]["cache_dir"] = str(blocker / "cache")  # cannot be created: memory only
    data = prepare_data(parse_config(raw))
    assert any("decode cache not written" in note for note in data.notes)
    raw["search"]["checkpoint_dir"] = str(blocker / "checkpoints")
    assert main(["run", str(write_config(tmp_path / "e.yaml", raw))]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is not writable" in err and "search.checkpoint_dir" in err
    assert not Path("mlflow.db").exists()  # nothing was started


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connecting is refused


@pytest.mark.parametrize("kind", ["silent-postgresql", "refused-postgresql", "silent-http"])
def test_an_unreachable_tracking_store_exits_2_in_seconds_without_the_password(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    config = write_config(tmp_path / "e.yaml", tiny_config(fake_kermany))
    with contextlib.ExitStack() as stack:
        port = _refused_port() if kind.startswith("refused") else stack.enter_context(silent_port())
        url = (
            f"http://127.0.0.1:{port}"
            if kind.endswith("http")
            else f"postgresql://user:s3cret@127.0.0.1:{port}/mlflow"
        )
        started = time.monotonic()
        assert main(["run", str(config), "--tracking-uri", url]) == 2
        waited = time.monotonic() - started
    out, err = capsys.readouterr()
    assert waited < 30, waited
    assert "cannot reach the MLflow tracking store" in err and "Traceback" not in err
    assert "s3cret" not in out + err
    if not kind.endswith("http"):
        assert "postgresql://user:***@127.0.0.1" in err


def test_a_full_disk_is_one_clear_error_runs_closed_and_a_rerun_finishes(
    tmp_path: Path,
    fake_kermany: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk fills up while the final model is logged: exit 2 naming the file, no run left
    RUNNING, the final evaluation not marked done; with space again the same command finishes."""
    import errno

    from pneumobench.tracking import models as tracked

    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["search"]["n_trials"] = 1
    config = write_config(tmp_path / "e.yaml", raw)
    real = tracked.log_serving
    full = tmp_path / "mlruns" / "model.onnx"

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(full))

    monkeypatch.setattr(tracked, "log_serving", no_space)
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"no space left on the device holding {full}" in err and "Traceback" not in err
    assert f"Resume with: {command()} run {config}" in err
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]
    parent = next(r for r in runs if r.data.tags.get("pneumobench.role") == "model")
    assert parent.data.tags.get("pneumobench.final_evaluation") != "done"
    monkeypatch.setattr(tracked, "log_serving", real)
    assert main(["run", str(config)]) == 0
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    done = [r for r in runs if r.data.tags.get("pneumobench.final_evaluation") == "done"]
    assert len(done) == 1 and not [r for r in runs if r.info.status == "RUNNING"]


@pytest.mark.slow
def test_a_store_locked_by_another_process_stops_cleanly_and_resumes(
    tmp_path: Path, fake_kermany: Path
) -> None:
    """Another process holds mlflow.db exclusively mid-trial, longer than MLflow waits: the run
    stops with one clear error (exit 2), and once the lock is gone the same command resumes and
    leaves no run RUNNING."""
    import sqlite3

    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["protocol"].update(max_epochs=30, patience=30)
    raw["search"]["n_trials"] = 1
    config = write_config(tmp_path / "e.yaml", raw)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pneumobench", "run", str(config)]
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "epoch 1/30" in line or (not line and proc.poll() is not None):
            break
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None, timeout=30)
    holder.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - started < 45:
            time.sleep(0.5)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    out, _ = proc.communicate(timeout=150)
    assert proc.returncode == 2, out[-3000:]
    assert "is locked by another process" in out and "Traceback" not in out
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert not [r for r in runs if r.info.status == "RUNNING"]
