"""`pneumobench run --workers N|auto`: N worker processes on the same studies."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from pneumobench.commands.main import main
from pneumobench.commands.workers import plan_workers
from tests.conftest import ROOT, tiny_config, write_config


def test_workers_split_the_gpus_or_the_cores() -> None:
    assert [(w.gpu, w.threads) for w in plan_workers("auto", 1, ["0", "1"], 16)] == [
        ("0", 8),
        ("1", 8),
    ]
    packed = plan_workers("auto", 2, ["3"], 16)  # two small models on one GPU
    assert [w.gpu for w in packed] == ["3", "3"]
    assert [(w.gpu, w.threads) for w in plan_workers("2", 1, [], 2)] == [(None, 1), (None, 1)]
    assert len(plan_workers("auto", 1, [], 2)) == 1 and len(plan_workers("auto", 1, [], 16)) == 4
    with pytest.raises(Exception, match="--workers 'many'"):
        plan_workers("many", 1, [], 2)


@pytest.mark.slow
def test_two_workers_finish_exactly_n_trials_between_them(
    tmp_path: Path, fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["search"]["n_trials"] = 3
    raw["protocol"]["max_epochs"] = 1
    config = write_config(tmp_path / "experiments.yaml", raw)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config), "--workers", "2"]) == 0
    study = optuna.load_study(
        study_name="tiny/simple_cnn", storage=f"sqlite:///{tmp_path / 'optuna.db'}"
    )
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 3
    workers = {t.user_attrs.get("worker", "").rsplit(":", 1)[-1] for t in study.trials}
    assert (tmp_path / ".pneumobench" / "workers" / "worker-2.log").is_file()  # worker 1: terminal
    assert len(workers) >= 1  # who ran which trial is the claims' business; the count is exact


def _running_trials(db: Path) -> int:
    """RUNNING trials in an Optuna SQLite file that workers are writing (0 before it exists)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM trials WHERE state = 'RUNNING'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _stop_mid_trial(tmp_path: Path, config: Path, stop: Callable[[subprocess.Popen], None]) -> str:
    """Start ``run --workers 2`` in a process group of its own, stop it once a trial trains."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pneumobench", "run", str(config), "--workers", "2"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # as a terminal's foreground job: one group, its own
    )
    deadline = time.monotonic() + 240
    while _running_trials(tmp_path / "optuna.db") == 0:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.2)
    time.sleep(1.0)  # inside an epoch
    stop(proc)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, out[-4000:]
    with pytest.raises(ProcessLookupError):  # no worker left behind in the group
        os.killpg(proc.pid, 0)
    return out


def _assert_nothing_left_running(tmp_path: Path) -> optuna.Study:
    study = optuna.load_study(
        study_name="tiny/simple_cnn", storage=f"sqlite:///{tmp_path / 'optuna.db'}"
    )
    assert not study.get_trials(states=(TrialState.RUNNING,))
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    assert runs and not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    return study


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_cleanly_and_the_same_command_resumes(
    tmp_path: Path, fake_kermany: Path
) -> None:
    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["protocol"].update(max_epochs=40, patience=40)  # trials long enough to be cut off
    raw["search"]["n_trials"] = 4
    config = write_config(tmp_path / "experiments.yaml", raw)

    # a SIGTERM to the command alone (a scheduler pre-empting it): passed on to every worker
    out = _stop_mid_trial(tmp_path, config, lambda p: p.send_signal(signal.SIGTERM))
    assert "Resume with the same command" in out and "--workers 2" in out, out[-4000:]
    study = _assert_nothing_left_running(tmp_path)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) < 4  # stopped mid-study, not after the workers ran it to its end
    # Ctrl-C in a terminal: the whole foreground group gets SIGINT at once
    out = _stop_mid_trial(tmp_path, config, lambda p: os.killpg(p.pid, signal.SIGINT))
    assert "Resume with the same command" in out, out[-4000:]
    for text in (out, (tmp_path / ".pneumobench/workers/worker-2.log").read_text()):
        assert "Traceback" not in text, text[-4000:]
    assert "worker 1/2 interrupted" in out
    _assert_nothing_left_running(tmp_path)

    again = subprocess.run(
        [sys.executable, "-m", "pneumobench", "run", str(config), "--workers", "2"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    study = _assert_nothing_left_running(tmp_path)
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 4
    assert study.get_trials(states=(TrialState.FAIL,))  # the cut-off trials, their slots re-run
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`pneumobench.role` = 'model'")
    assert parent.data.tags["pneumobench.final_evaluation"] == "done"
