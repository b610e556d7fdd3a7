"""Picking up after a crash, ``kill -9`` or Ctrl-C: nothing finished is lost, nothing stays RUNNING.

Each trial records which process runs it (``host:pid``). When a study is opened again, a RUNNING
trial whose process on this host is gone is failed at once (Optuna's heartbeat handles workers on
other hosts after its grace period), and the MLflow run of every failed trial is closed as FAILED.
"""

from __future__ import annotations

import os
import socket

import optuna
from optuna.trial import TrialState

from pneumobench.benchmark import tracking as T

WORKER_ATTR = "worker"
RUN_ATTR = "mlflow_run_id"


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def fail_dead_local_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose process on this host no longer exists; their numbers."""
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get(WORKER_ATTR, ""))
        worker_host, _, pid = worker.rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            failed.append(trial.number)
    return failed


def close_orphan_runs(study: optuna.Study) -> list[str]:
    """MLflow runs of failed trials that were left RUNNING (process killed) become FAILED."""
    import mlflow

    client = mlflow.MlflowClient()
    closed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        run_id = trial.user_attrs.get(RUN_ATTR)
        if not run_id:
            continue
        run = client.get_run(run_id)
        if run.info.status == "RUNNING":
            client.set_tag(run_id, T.TRIAL_STATE, "FAIL")
            client.set_tag(run_id, "pneumobench.fail_reason", "the process running it was killed")
            client.set_terminated(run_id, "FAILED")
            closed.append(run_id)
    return closed
