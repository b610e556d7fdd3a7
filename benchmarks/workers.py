"""1 worker x 2 threads against 2 workers x 1 thread (``run --workers 2``) on this machine: wall
time of the same config, and exactly ``n_trials`` finished per model either way. Writes a JSON.

    uv run python benchmarks/workers.py [--trials 4] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _config(folder: Path, trials: int, epochs: int) -> Path:
    import yaml

    data = os.environ.get("PNEUMOBENCH_DATA_ROOT", str(ROOT.parent / "shared" / "data"))
    config = {
        "name": "workers",
        "seed": 42,
        "device": "cpu",
        "data": {
            "source": "medmnist",
            "path": str(Path(data) / "pneumoniamnist.npz"),
            "image_size": 28,
        },
        "protocol": {"max_epochs": epochs, "patience": epochs, "batch_size": 64},
        "search": {"n_trials": trials, "pruner": "none", "storage": "sqlite:///optuna.db"},
        "evaluation": {"bootstrap_resamples": 200},
        "models": ["simple_cnn", {"name": "resnet18", "pretrained": False, "label": "resnet18"}],
    }
    path = folder / "e.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _arm(workers: int, trials: int, epochs: int) -> dict:
    import optuna

    with tempfile.TemporaryDirectory(prefix="pneumobench-workers-") as tmp:
        folder = Path(tmp)
        config = _config(folder, trials, epochs)
        command = [sys.executable, "-m", "pneumobench", "run", str(config)]
        if workers > 1:
            command += ["--workers", str(workers)]
        started = time.perf_counter()
        run = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - started
        finished = {}
        for label in ("simple_cnn", "resnet18"):
            study = optuna.load_study(
                study_name=f"workers/{label}", storage=f"sqlite:///{folder / 'optuna.db'}"
            )
            states = [t.state.name for t in study.trials]
            finished[label] = {"complete": states.count("COMPLETE"), "all": len(states)}
        return {
            "workers": workers,
            "threads_each": (os.cpu_count() or 1) // workers,
            "exit_code": run.returncode,
            "wall_s": round(wall, 1),
            "trials": finished,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/workers-cpu.json")
    args = parser.parse_args()
    arms = [_arm(1, args.trials, args.epochs), _arm(2, args.trials, args.epochs)]
    for arm in arms:
        print(arm)
    report = {
        "cpus": os.cpu_count(),
        "n_trials": args.trials,
        "arms": arms,
        "ratio_2_over_1": round(arms[1]["wall_s"] / arms[0]["wall_s"], 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"2 workers / 1 worker wall time: {report['ratio_2_over_1']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
