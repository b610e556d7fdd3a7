"""Tests of pneumobench/search/workers.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import TrialState

from tests.conftest import tiny_config, write_config, write_fake_kermany
from tests.servers import fresh_database, mlflow_server, requires_postgres, start_worker

pytestmark = requires_postgres

N_TRIALS = 4

MODELS = ["simple_cnn", "cifar_cnn"]


def _config(tmp_path: Path, name: str, epochs: int = 2) -> Path:
    data = write_fake_kermany(tmp_path / "chest_xray", patients_per_class=10)
    config = tiny_config(
        data,
        name=name,
        models=MODELS,
        protocol={"max_epochs": epochs, "patience": epochs, "batch_size": 16, "freeze_epochs": 0},
        search={
            "n_trials": N_TRIALS,
            "pruner": "none",
            "heartbeat_interval": 1,
            "grace_period": 4,
            "poll_interval": 0.5,
        },
    )
    return write_config(tmp_path / "workers.yaml", config)


def _start_worker(i: int, config: Path, storage: str, tracking: str, log_dir: Path):
    """A worker that plays its own node: a dead one is noticed only by its heartbeat."""
    return start_worker(
        i, config, storage, tracking, log_dir, PNEUMOBENCH_HOSTNAME=f"node-{i}", OMP_NUM_THREADS="1"
    )


def _logs(log_dir: Path, tail: int | None = 4000) -> str:
    """The workers' logs (the last ``tail`` characters of each, for assertion messages)."""
    return "\n".join(
        f"--- {p.name}\n{p.read_text()[-tail if tail else 0 :]}"
        for p in sorted(log_dir.glob("worker-*.log"))
    )


def _check_shared_study(storage: str, tracking: str, name: str, log_dir: Path) -> None:
    """Exactly n_trials per model, each trial logged once, one parent and one evaluation each."""
    import mlflow

    client = mlflow.MlflowClient(tracking)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    logs, full_logs = _logs(log_dir), _logs(log_dir, tail=None)
    for label in MODELS:
        study = optuna.load_study(study_name=f"{name}/{label}", storage=storage)
        trials = study.get_trials()
        assert sum(t.state == TrialState.COMPLETE for t in trials) == N_TRIALS, logs
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        numbers = [t.number for t in trials]
        assert len(numbers) == len(set(numbers))
        trial_runs = [
            r
            for r in runs
            if r.data.tags.get("pneumobench.label") == label
            and r.data.tags.get("pneumobench.role") == "trial"
        ]
        names = Counter(r.info.run_name for r in trial_runs)
        assert all(count == 1 for count in names.values()), names
        assert len(trial_runs) == len(trials)  # one run per trial, failed ones included
        for t in trials:
            run = next(r for r in trial_runs if r.info.run_id == t.user_attrs["mlflow_run_id"])
            expected = "FINISHED" if t.state == TrialState.COMPLETE else "FAILED"
            assert run.info.status == expected, (t.number, t.state, run.info.status)
        parents = [
            r
            for r in runs
            if r.data.tags.get("pneumobench.label") == label
            and r.data.tags.get("pneumobench.role") == "model"
        ]
        assert len(parents) == 1, [p.info.run_id for p in parents]
        parent = parents[0]
        assert parent.data.tags["pneumobench.final_evaluation"] == "done"
        assert parent.data.tags["pneumobench.final_trials"] == str(N_TRIALS)
        assert study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id
        history = client.get_metric_history(parent.info.run_id, "test_recall")
        assert len(history) == 1  # the test set was looked at once
        assert full_logs.count(f"{label} best trial") == 1, logs

    board = subprocess.run(
        [
            sys.executable,
            "-m",
            "pneumobench",
            "leaderboard",
            "--experiment",
            name,
            "--tracking-uri",
            tracking,
            "--format",
            "json",
            "--resamples",
            "100",
        ],
        capture_output=True,
        text=True,
        cwd=log_dir,
        timeout=300,
    )
    assert board.returncode == 0, board.stderr
    rows = json.loads(board.stdout)
    assert sorted(r["model"] for r in rows) == sorted(MODELS)
    assert all(r["rank"] is not None for r in rows)


@pytest.mark.slow
def test_three_workers_share_each_study_and_survive_a_killed_one(tmp_path: Path) -> None:
    """3 workers, 2 models; worker 0 is SIGKILLed in the middle of its first trial."""
    config = _config(tmp_path, "workers", epochs=5)
    with (
        fresh_database("optuna") as storage,
        fresh_database("mlflow") as backend,
        mlflow_server(backend, tmp_path / "server") as tracking,
    ):
        procs = [_start_worker(i, config, storage, tracking, tmp_path) for i in range(3)]
        victim = procs[0][0]
        deadline = time.monotonic() + 600
        killed_trial = None
        while killed_trial is None and time.monotonic() < deadline and victim.poll() is None:
            time.sleep(0.2)
            try:
                study = optuna.load_study(study_name="workers/simple_cnn", storage=storage)
            except KeyError:
                continue
            for t in study.get_trials(states=(TrialState.RUNNING,)):
                mine = t.user_attrs.get("worker") == f"node-0:{victim.pid}"
                if mine and "mlflow_run_id" in t.user_attrs:  # training has begun
                    victim.send_signal(signal.SIGKILL)
                    killed_trial = t.number
                    break
        assert killed_trial is not None, _logs(tmp_path)
        for proc, log in procs:
            proc.wait(timeout=900)
            log.close()
        assert victim.returncode == -signal.SIGKILL
        assert [p.returncode for p, _ in procs[1:]] == [0, 0], _logs(tmp_path)

        study = optuna.load_study(study_name="workers/simple_cnn", storage=storage)
        dead = study.trials[killed_trial]
        assert dead.state == TrialState.FAIL  # noticed by its heartbeat: "another node"
        retries = [
            t
            for t in study.trials
            if RetryFailedTrialCallback.retried_trial_number(t) == killed_trial
        ]
        assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
        assert retries[0].params == dead.params
        assert retries[0].user_attrs["worker"].split(":")[0] in ("node-1", "node-2")
        _check_shared_study(storage, tracking, "workers", tmp_path)
