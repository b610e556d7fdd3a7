"""Picking up after a crash, ``kill -9`` or Ctrl-C: nothing finished is lost, nothing stays RUNNING.

Each trial records which process runs it (``host:pid``). When a study is opened again, a RUNNING
trial whose process on this host is gone is failed at once (Optuna's heartbeat handles workers on
other hosts after its grace period), and the MLflow run of every failed trial is closed as FAILED.
"""

from __future__ import annotations

import copy
import os
import socket

import optuna
from optuna.trial import TrialState

from pneumobench.tracking import schema as S
from pneumobench.tracking.writer import close_orphan_trial_run


def host_name() -> str:
    """This machine's name in trial records; PNEUMOBENCH_HOSTNAME overrides it (tests use it to
    play several nodes on one machine, where only heartbeats can tell a worker is gone)."""
    return os.environ.get("PNEUMOBENCH_HOSTNAME") or socket.gethostname()


def this_worker() -> str:
    """``host:pid`` of this process: who runs a trial or holds a claim."""
    return f"{host_name()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_dead_local_worker(worker: str) -> bool:
    """True for ``host:pid`` of this host whose process is gone; False if alive or elsewhere."""
    host, _, pid = worker.rpartition(":")
    return host == host_name() and pid.isdigit() and not _alive(int(pid))


def fail_dead_local_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose process on this host no longer exists; their numbers.

    They are handled as Optuna handles a trial whose heartbeat stopped, only without waiting for
    the grace period: failed, then retried with the same parameters by the storage's callback.
    """
    storage = study._storage
    retry = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_dead_local_worker(str(trial.user_attrs.get(S.TRIAL_WORKER_ATTR, ""))):
            try:
                if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker got there first
            if retry is not None:
                retry(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
            failed.append(trial.number)
    return failed


def close_orphan_runs(study: optuna.Study) -> list[str]:
    """MLflow runs of failed trials that were left RUNNING (process killed) become FAILED."""
    closed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        run_id = trial.user_attrs.get(S.TRIAL_RUN_ATTR)
        if run_id and close_orphan_trial_run(str(run_id)):
            closed.append(str(run_id))
    return closed
