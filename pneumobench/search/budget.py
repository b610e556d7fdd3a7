"""The trial budget across workers: together they finish exactly ``n_trials``, not N x.

Admission is decided under a study-wide lock (a claim in the Optuna database, see
coordination.py): count the study's finished, running and queued trials, and admit one more only
if it still fits. The lock is handed to the caller inside the :class:`Admission`; the caller
releases it as soon as its trial exists in the storage (so others count it), and at the latest
when it asks for the next admission. A worker with nothing left to start waits while other
workers' trials run, because a dead worker's trial comes back (queued) to be retried.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from pneumobench import interrupts
from pneumobench.search.coordination import Claims, Lease
from pneumobench.search.recovery import fail_dead_local_trials
from pneumobench.search.study import counted_trials


@dataclass
class Admission:
    """Permission to start one trial now."""

    lease: Lease  # the study's admission lock: release it once the trial exists
    index: int  # this trial's position in the budget, 1-based (for progress display)
    counted: int  # finished trials when admitted
    running: int  # trials running in any worker when admitted
    first: bool  # the first admission of this worker for this study


def admissions(
    study: optuna.Study,
    claims: Claims,
    n_trials: int,
    *,
    timeout: float | None,
    poll_interval: float,
    on_wait: Callable[[int, int], None],
) -> Iterator[Admission]:
    """Yield an :class:`Admission` for each trial this worker may run, until the study holds
    ``n_trials`` finished trials, nothing that could finish is left, or ``timeout`` seconds pass.

    ``on_wait(running, counted)`` is called once when this worker starts waiting for others.
    Failures do not loop forever: this worker admits at most as many new trials as were missing.
    """
    attempts = max(0, n_trials - counted_trials(study))
    deadline = None if timeout is None else time.monotonic() + timeout
    first, waiting_said = True, False
    while deadline is None or time.monotonic() < deadline:
        interrupts.check()
        lease = claims.acquire(f"admit:{study.study_name}")
        try:
            fail_dead_local_trials(study)
            with warnings.catch_warnings():  # "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            states = [t.state for t in study.get_trials(deepcopy=False)]
            counted = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
            running = states.count(TrialState.RUNNING)
            queued = states.count(TrialState.WAITING)  # retries of dead workers' trials
            if counted >= n_trials:
                return
            if queued or (counted + running < n_trials and attempts > 0):
                attempts -= 0 if queued else 1
                yield Admission(
                    lease, min(n_trials, counted + running + 1), counted, running, first
                )
                first = False
                continue
        finally:
            lease.release()
        if running == 0:
            return  # nothing left that could finish: the budget cannot be filled now
        if not waiting_said:
            waiting_said = True
            on_wait(running, counted)
        time.sleep(poll_interval)
