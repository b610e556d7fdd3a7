"""Wall time of one study run by 1 worker vs N workers sharing it (issue 6).

Needs a PostgreSQL server (``eval "$(.ci/postgres start)"``). For each worker count it creates
fresh Optuna and MLflow databases, starts ``mlflow server`` on 127.0.0.1, runs that many
``pneumobench run`` processes on the same config and measures wall time and seconds per finished
trial. Prints a table and writes a JSON report.

    uv run python benchmarks/scale_out.py --workers 1 3 --out benchmarks/results/scale-out-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import fresh_database, mlflow_server, start_worker  # noqa: E402


def _config(path: Path, trials: int, epochs: int, limit: int) -> Path:
    import yaml

    data = os.environ.get("PNEUMOBENCH_DATA_ROOT", str(ROOT.parent / "shared" / "data"))
    config = {
        "name": "scale-out",
        "seed": 42,
        "device": "cpu",
        "data": {
            "source": "medmnist",
            "path": str(Path(data) / "pneumoniamnist.npz"),
            "image_size": 28,
            "limit_per_class": limit,
        },
        "protocol": {"max_epochs": epochs, "patience": epochs, "batch_size": 64},
        "search": {
            "n_trials": trials,
            "pruner": "none",
            "heartbeat_interval": 5,
            "grace_period": 20,
            "poll_interval": 0.5,
        },
        "evaluation": {"bootstrap_resamples": 200},
        "models": ["simple_cnn"],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(workers: int, config: Path, workdir: Path, threads: int | None) -> dict:
    import optuna
    from optuna.trial import TrialState

    workdir.mkdir(parents=True, exist_ok=True)
    with (
        fresh_database("bench_optuna") as storage,
        fresh_database("bench_mlflow") as backend,
        mlflow_server(backend, workdir / "server") as tracking,
    ):
        env = {"OMP_NUM_THREADS": str(threads)} if threads else {}
        started = time.perf_counter()
        procs = [start_worker(i, config, storage, tracking, workdir, **env) for i in range(workers)]
        codes = []
        for proc, log in procs:
            codes.append(proc.wait())
            log.close()
        wall = time.perf_counter() - started
        study = optuna.load_study(study_name="scale-out/simple_cnn", storage=storage)
        trials = study.get_trials(states=(TrialState.COMPLETE,))
        trial_seconds = sum(t.duration.total_seconds() for t in trials)
    return {
        "workers": workers,
        "omp_num_threads": threads,
        "exit_codes": codes,
        "finished_trials": len(trials),
        "wall_seconds": round(wall, 1),
        "seconds_per_finished_trial": round(wall / max(1, len(trials)), 2),
        "mean_trial_seconds": round(trial_seconds / max(1, len(trials)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--trials", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit-per-class", type=int, default=400)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS per worker (default: PyTorch's own choice)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scale-out.json")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pneumobench-scale-out"))
    args = parser.parse_args()

    import torch

    args.workdir.mkdir(parents=True, exist_ok=True)
    config = _config(args.workdir / "config.yaml", args.trials, args.epochs, args.limit_per_class)
    results = [run(n, config, args.workdir / f"w{n}", args.threads) for n in args.workers]
    base = results[0]["seconds_per_finished_trial"]
    for r in results:
        r["speedup_vs_first"] = round(base / r["seconds_per_finished_trial"], 2)
    report = {
        "benchmark": "scale_out",
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads_default": torch.get_num_threads(),
        "platform": platform.platform(),
        "config": {
            "model": "simple_cnn",
            "data": "PneumoniaMNIST 28 px",
            "limit_per_class": args.limit_per_class,
            "n_trials": args.trials,
            "max_epochs": args.epochs,
            "seed": 42,
        },
        "storage": "PostgreSQL (127.0.0.1)",
        "tracking": "mlflow server (127.0.0.1)",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{'workers':>8} {'trials':>7} {'wall s':>8} {'s/trial':>8} {'trial s':>8} {'speedup':>8}"
    )
    for r in results:
        print(
            f"{r['workers']:>8} {r['finished_trials']:>7} {r['wall_seconds']:>8} "
            f"{r['seconds_per_finished_trial']:>8} {r['mean_trial_seconds']:>8} "
            f"{r['speedup_vs_first']:>8}"
        )
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()
