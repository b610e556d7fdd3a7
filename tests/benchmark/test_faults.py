"""A benchmark run killed or interrupted mid-trial resumes without loss or duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT, storage_uri, store_uri, tiny_config, write_config

N_TRIALS = 3


def _config(tmp_path: Path, data: Path) -> Path:
    raw = tiny_config(data, models=["simple_cnn"])
    raw["protocol"].update(max_epochs=40, patience=40)  # long enough trials to be killed inside
    raw["search"]["n_trials"] = N_TRIALS
    return write_config(tmp_path / "experiments.yaml", raw)


def _start(config: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "pneumobench", "run", str(config)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(proc: subprocess.Popen, needle: str, timeout: float = 240) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    proc.kill()
    raise AssertionError(f"never saw {needle!r}:\n{''.join(seen)}")


def _trial_runs() -> list:
    client = mlflow.MlflowClient(store_uri())
    exp = client.get_experiment_by_name("tiny")
    return client.search_runs([exp.experiment_id], "tags.`pneumobench.role` = 'trial'")


def _assert_complete_structure() -> optuna.Study:
    study = optuna.load_study(study_name="tiny/simple_cnn", storage=storage_uri())
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == N_TRIALS
    assert not study.get_trials(states=(TrialState.RUNNING,))
    runs = _trial_runs()
    assert len({r.info.run_id for r in runs}) == len(runs) == len(study.trials)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    client = mlflow.MlflowClient(store_uri())
    exp = client.get_experiment_by_name("tiny")
    parents = client.search_runs([exp.experiment_id], "tags.`pneumobench.role` = 'model'")
    assert len(parents) == 1 and parents[0].data.tags["pneumobench.final_evaluation"] == "done"
    assert parents[0].info.status == "FINISHED"
    return study


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_run_resumes_without_loss_or_duplicates(
    tmp_path: Path, fake_kermany: Path, sig: signal.Signals
) -> None:
    config = _config(tmp_path, fake_kermany)
    proc = _start(config, tmp_path)
    _wait_for(proc, "trial 1 epoch 3/")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, out[-4000:]
        assert "Resume with the same command" in out
        assert "Traceback" not in out, out[-4000:]  # one line and the resume command
        killed = [r for r in _trial_runs() if r.info.status == "KILLED"]
        assert len(killed) == 1 and killed[0].info.run_name == "simple_cnn/trial-001"
    else:
        assert proc.returncode == -signal.SIGKILL

    study = optuna.load_study(study_name="tiny/simple_cnn", storage=storage_uri())
    assert study.trials[0].state == TrialState.COMPLETE
    # the interrupted model is listed with its state, not lost
    board = subprocess.run(
        [sys.executable, "-m", "pneumobench", "leaderboard", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert "simple_cnn (not evaluated): search not finished" in " ".join(board.stdout.split())

    again = _start(config, tmp_path)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    study = _assert_complete_structure()
    states = {t.number: t.state for t in study.trials}
    assert states[1] == TrialState.FAIL  # the cut-off trial, its slot run again
    killed_run = next(r for r in _trial_runs() if r.info.run_name == "simple_cnn/trial-001")
    assert killed_run.info.status in ("FAILED", "KILLED")
    assert killed_run.data.tags["pneumobench.trial_state"] in ("FAIL", "INTERRUPTED")
