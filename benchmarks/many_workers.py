"""Many workers on one study, simulated: N processes (64 by default) run a tiny objective (a
sub-second sleep, no torch) on one PostgreSQL study through pneumobench's own storage
(``search.study.make_storage``), admission (``search.budget.admissions``) and claims, as
``pneumobench run`` workers do. Reports trials admitted per second, the peak number of database
connections (``pg_stat_activity``), and that exactly ``n_trials`` finished with no trial number
repeated and nothing over-admitted. Prints a table and writes a JSON report.

Needs PostgreSQL (``eval "$(.ci/postgres start)"`` sets ``PNEUMOBENCH_TEST_POSTGRES``).

    uv run python benchmarks/many_workers.py --workers 64 --trials 256
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def worker(url: str, study_name: str, n_trials: int, seconds: float, seed: int) -> int:
    """One worker: admit, run, repeat, as ``ModelRun._search`` does; trials it ran."""
    import random

    import optuna

    from pneumobench.search.budget import admissions
    from pneumobench.search.coordination import Claims
    from pneumobench.search.recovery import this_worker
    from pneumobench.search.study import make_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = make_storage(url, heartbeat_interval=5, grace_period=20)
    study = optuna.load_study(study_name=study_name, storage=storage)
    claims = Claims(storage.engine)
    rng = random.Random(seed)
    ran = 0

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", this_worker())
        x = trial.suggest_float("x", -1, 1)
        time.sleep(seconds * (0.5 + rng.random()))
        return x * x

    for admission in admissions(
        study, claims, n_trials, timeout=600, poll_interval=0.2, on_wait=lambda r, c: None
    ):

        def release_then_run(trial: optuna.Trial, lease=admission.lease) -> float:
            lease.release()  # the trial exists: others may count it
            return objective(trial)

        study.optimize(release_then_run, n_trials=1)
        ran += 1
    return ran


def _peak_connections(admin_url: str, database: str, stop: threading.Event, peak: list[int]):
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        while not stop.is_set():
            (count,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()
            peak[0] = max(peak[0], int(count))
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--trials", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=0.3, help="mean trial duration")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/many-workers.json")
    args = parser.parse_args()
    admin = os.environ.get("PNEUMOBENCH_TEST_POSTGRES")
    if not admin:
        print('needs PostgreSQL: eval "$(.ci/postgres start)"', file=sys.stderr)
        return 2
    import optuna
    import psycopg

    from tests.servers import fresh_database

    with fresh_database("many") as url, psycopg.connect(admin, autocommit=True) as conn:
        database = url.rsplit("/", 1)[1]
        (max_connections,) = conn.execute("SHOW max_connections").fetchone()
        from pneumobench.search.study import make_storage

        optuna.create_study(study_name="many", storage=make_storage(url))
        stop, peak = threading.Event(), [0]
        watcher = threading.Thread(
            target=_peak_connections, args=(admin, database, stop, peak), daemon=True
        )
        watcher.start()
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers) as pool:
            ran = pool.starmap(
                worker,
                [(url, "many", args.trials, args.seconds, i) for i in range(args.workers)],
            )
        wall = time.perf_counter() - started
        stop.set()
        watcher.join()
        study = optuna.load_study(study_name="many", storage=make_storage(url))
        trials = study.get_trials(deepcopy=False)
        numbers = [t.number for t in trials]
        finished = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        starts = sorted(t.datetime_start for t in trials if t.datetime_start)
        ends = sorted(t.datetime_complete for t in finished if t.datetime_complete)
        span = (ends[-1] - starts[0]).total_seconds() if starts and ends else float("nan")
        report = {
            "workers": args.workers,
            "n_trials": args.trials,
            "finished": len(finished),
            "trials_in_storage": len(trials),
            "repeated_numbers": len(numbers) - len(set(numbers)),
            "ran_per_worker": sorted(ran),
            "wall_s": round(wall, 2),  # with 64 interpreters starting (importing mlflow, optuna)
            "trials_span_s": round(span, 2),  # first trial started -> last one finished
            "admitted_per_second": round(len(trials) / span, 2),
            "peak_db_connections": peak[0],
            "max_connections": int(max_connections),
            "cpus": os.cpu_count(),
        }
    ok = report["finished"] == args.trials == report["trials_in_storage"]
    ok = (
        ok
        and not report["repeated_numbers"]
        and report["peak_db_connections"] < int(max_connections)
    )
    for key, value in report.items():
        print(f"{key:22s} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**report, "ok": ok}, indent=2))
    print(f"{'ok' if ok else 'NOT OK'} -> {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
