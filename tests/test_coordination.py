"""Claims and locks in the Optuna storage's database: one winner, however many workers race."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pneumobench.benchmark.coordination import Claims
from pneumobench.benchmark.search import make_storage


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

    from pneumobench.benchmark.recovery import host_name

    assert host_name() == socket.gethostname()
    dead = f"{host_name()}:999999:1"  # a pid that does not exist on this host
    assert claims.claim("admit:study", dead) == dead
    started = time.monotonic()
    lease = claims.acquire("admit:study")
    assert lease.held
    lease.release()
    assert time.monotonic() - started < 5
    assert claims.get("admit:study") is None


def test_best_trial_breaks_ties_by_trial_number_so_workers_agree() -> None:
    import optuna

    from pneumobench.benchmark.search import beats, best_trial

    study = optuna.create_study(direction="maximize")
    for value in (0.5, 1.0, 1.0, 0.9):
        study.enqueue_trial({})
        study.tell(study.ask(), value)
    best = best_trial(study)
    assert best is not None and best.number == 1
    assert not beats(1.0, 2, best, direction="maximize")  # a later tie keeps the earlier checkpoint
    assert beats(
        1.0, 0, best, direction="maximize"
    )  # an earlier number finishing later wins the tie
    assert beats(1.1, 9, best, direction="maximize") and not beats(
        0.99, 0, best, direction="maximize"
    )
    assert beats(0.1, 5, None, direction="minimize")
