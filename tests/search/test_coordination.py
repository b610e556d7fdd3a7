"""Tests of pneumobench/search/coordination.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pneumobench.search.coordination import Claims
from pneumobench.search.study import make_storage


def _claims(tmp_path: Path) -> Claims:
    return Claims(make_storage(f"sqlite:///{tmp_path / 'optuna.db'}").engine)


def test_first_claim_wins_and_everyone_reads_the_winner(tmp_path: Path) -> None:
    claims = _claims(tmp_path)
    seen: list[str] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        other = Claims(make_storage(f"sqlite:///{tmp_path / 'optuna.db'}").engine)
        barrier.wait()
        seen.append(other.claim("parent:study", f"run-{i}"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and len(set(seen)) == 1
    assert claims.get("parent:study") == seen[0]
    claims.release("parent:study", "someone-else")  # only the holder can release
    assert claims.get("parent:study") == seen[0]
    claims.release("parent:study", seen[0])
    assert claims.get("parent:study") is None


def test_lock_excludes_and_a_dead_holder_is_taken_over(tmp_path: Path) -> None:
    claims = _claims(tmp_path)
    inside: list[int] = []
    overlaps: list[int] = []

    def worker() -> None:
        for _ in range(5):
            lease = claims.acquire("admit:study")
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(len(inside))
            time.sleep(0.002)
            inside.pop()
            lease.release()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps

    import socket

    from pneumobench.search.recovery import host_name

    assert host_name() == socket.gethostname()
    dead = f"{host_name()}:999999:1"  # a pid that does not exist on this host
    assert claims.claim("admit:study", dead) == dead
    started = time.monotonic()
    lease = claims.acquire("admit:study")
    assert lease.held
    lease.release()
    assert time.monotonic() - started < 5
    assert claims.get("admit:study") is None


def test_a_worker_whose_clock_runs_minutes_ahead_does_not_take_over_a_live_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staleness is judged by the database's clock: a node 10 minutes ahead (or behind) sees a
    fresh lock as fresh; the same lock, once really older than ``stale_after``, is taken over."""
    import pneumobench.search.coordination as coordination
    from pneumobench.search.recovery import this_worker

    live = _claims(tmp_path)
    holder = f"{this_worker()}:1"  # this very process: alive, so never "a dead local worker"
    assert live.claim("admit:study", holder) == holder
    skewed = _claims(tmp_path)
    real_time = time.time
    for offset in (+600.0, -600.0):  # this host's clock, as the skewed worker reads it
        monkeypatch.setattr(coordination.time, "time", lambda o=offset: real_time() + o)
        got: list[object] = []

        def take(got: list[object] = got) -> None:
            got.append(skewed.acquire("admit:study", stale_after=120.0, poll=0.01))

        thread = threading.Thread(target=take, daemon=True)
        thread.start()
        thread.join(1.0)
        assert not got and live.get("admit:study") == holder, offset  # still the live holder
        live.release("admit:study", holder)
        thread.join(5.0)
        assert got and got[0].held  # released: the skewed worker gets it the normal way
        got[0].release()
        assert live.claim("admit:study", holder) == holder
    # a lock that is really stale by the database's clock is taken over
    with live.engine.begin() as conn:
        conn.execute(
            coordination._claims.update().values(taken_at=coordination._claims.c.taken_at - 300)
        )
    lease = skewed.acquire("admit:study", stale_after=120.0, poll=0.01)
    assert lease.held and live.get("admit:study") != holder
