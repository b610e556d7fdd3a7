"""Start-up time of every pneumobench command: wall seconds from launch to exit, measured on the
machine as it is (run it idle), and what each imported (torch, mlflow).

    uv run python benchmarks/startup.py [--source DIR] [--repeat 3] [--out FILE.json]

``--source`` measures another checkout's package with this environment (PYTHONPATH first), for
before / after figures. Commands that read results need a finished run: the script makes a tiny
one first (PneumoniaMNIST from ../shared/data, 1 trial, 1 epoch), outside the timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = """name: startup
task: binary
device: cpu
data: {source: medmnist, path: pneumoniamnist.npz, image_size: 28}
protocol: {max_epochs: 1, batch_size: 128}
search: {n_trials: 1, pruner: none, storage: sqlite:///optuna.db}
evaluation: {bootstrap_resamples: 100, ensemble: {top_k: 0}}
models: [simple_cnn]
"""

COMMANDS = {
    "--help": ["--help"],
    "models": ["models"],
    "data check": ["data", "check", "{npz}"],
    "leaderboard": ["leaderboard", "--config", "e.yaml", "--resamples", "100"],
    "report": ["report", "--config", "e.yaml", "--out", "r.html", "--no-log", "--resamples", "100"],
    "predict": ["predict", "{image}", "--config", "e.yaml", "--out", "p.csv"],
    "export": ["export", "--config", "e.yaml", "--format", "onnx", "--out", "m.onnx"],
    "run (until its first line)": ["run", "e.yaml"],
}


def _env(source: Path | None, data: Path) -> dict[str, str]:
    env = {**os.environ, "PNEUMOBENCH_DATA_ROOT": str(data), "MLFLOW_DISABLE_TELEMETRY": "true"}
    if source is not None:
        env["PYTHONPATH"] = f"{source}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env


def _time(argv: list[str], cwd: Path, env: dict[str, str], first_line: bool) -> tuple[float, set]:
    command = [sys.executable, "-X", "importtime", "-m", "pneumobench", *argv]
    with tempfile.TemporaryFile("w+") as stderr:  # importtime writes a lot: never a full pipe
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        assert proc.stdout is not None
        if first_line:  # `run`: until it prints its first line (then stopped)
            proc.stdout.readline()
            seconds = time.perf_counter() - started
            proc.kill()
        else:
            proc.stdout.read()
            seconds = time.perf_counter() - started
        proc.wait()
        stderr.seek(0)
        err = stderr.read()
    modules = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line}
    return seconds, modules & {"torch", "mlflow"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="another checkout's folder (its pneumobench/)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/startup.json")
    args = parser.parse_args()
    env = _env(args.source, args.data.resolve())
    with tempfile.TemporaryDirectory(prefix="pneumobench-startup-") as tmp:
        work = Path(tmp)
        (work / "e.yaml").write_text(TINY)
        subprocess.run(
            [sys.executable, "-m", "pneumobench", "run", "e.yaml"],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
        )
        import numpy as np
        from PIL import Image

        with np.load(args.data / "pneumoniamnist.npz") as npz:
            Image.fromarray(npz["test_images"][0]).save(work / "x.png")
        values = {"npz": str(args.data / "pneumoniamnist.npz"), "image": str(work / "x.png")}
        results = {}
        for name, argv in COMMANDS.items():
            argv = [a.format(**values) for a in argv]
            runs = [_time(argv, work, env, name.startswith("run")) for _ in range(args.repeat)]
            seconds = [s for s, _ in runs]
            results[name] = {
                "median_s": round(statistics.median(seconds), 2),
                "all_s": [round(s, 2) for s in seconds],
                "imports": sorted(set().union(*(m for _, m in runs))),
            }
            print(
                f"{name:28s} {results[name]['median_s']:6.2f} s  imports "
                f"{', '.join(results[name]['imports']) or 'neither torch nor mlflow'}"
            )
    report = {"source": str(args.source or ROOT), "cpus": os.cpu_count(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
