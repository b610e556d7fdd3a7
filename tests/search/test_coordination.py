"""Tests of pneumobench/search/coordination.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

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
