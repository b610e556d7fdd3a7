"""Where the default benchmark's time goes: one ``pneumobench run`` in a fresh folder, its stage
profile printed and written to a JSON report with the command's wall time, the machine and the
code it measured.

    uv run python benchmarks/stage_profile.py [CONFIG] [--source DIR] [--out FILE.json]

CONFIG defaults to ``experiments.yaml`` (the default benchmark, PneumoniaMNIST from
``../shared/data``, MobileNetV2's ImageNet weights from ``../shared/weights``). ``--source``
measures another checkout's package with this environment (PYTHONPATH first), for before /
after figures; that checkout must know ``run --profile-out``. The "before" figure in
docs/performance.md is commit 00a5f7e (the code issue 27 was filed against) with the profile
backported, ``benchmarks/stage_profile_before.patch``:

    git worktree add ../before 00a5f7e && git -C ../before apply "$PWD/benchmarks/stage_profile_before.patch"
    uv run python benchmarks/stage_profile.py --source ../before --out before.json

The run writes its stores in a temporary folder, never in the repository. Run it on an idle
machine: it reads wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commit(source: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() + (" + uncommitted changes" if dirty else "")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _run(config: Path, source: Path | None, shared: Path, folder: Path) -> tuple[int, float]:
    env = {
        **os.environ,
        "PNEUMOBENCH_DATA_ROOT": os.environ.get("PNEUMOBENCH_DATA_ROOT", str(shared / "data")),
        "TORCH_HOME": os.environ.get("TORCH_HOME", str(shared / "weights")),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    if source is not None:
        env["PYTHONPATH"] = f"{source}{os.pathsep}{env.get('PYTHONPATH', '')}"
    command = [sys.executable, "-m", "pneumobench", "run", str(config.resolve())]
    command += ["--profile-out", str(folder / "profile.json")]
    started = time.perf_counter()
    with open(folder / "run.log", "w") as log:  # the run's own output, kept for reading
        code = subprocess.call(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    return code, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, nargs="?", default=ROOT / "experiments.yaml")
    parser.add_argument("--source", type=Path, help="another checkout (its pneumobench/)")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/stage-profile.json")
    parser.add_argument("--keep", type=Path, help="run in this (empty) folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="stage-profile-"))
    folder.mkdir(parents=True, exist_ok=True)
    code, wall = _run(args.config, args.source, args.shared, folder)
    if code != 0 or not (folder / "profile.json").exists():
        print((folder / "run.log").read_text()[-4000:], file=sys.stderr)
        print(f"pneumobench run exited {code}; its output is in {folder / 'run.log'}")
        return 1
    profile = json.loads((folder / "profile.json").read_text())
    report = {
        "what": f"pneumobench run {args.config.name}, fresh stores",
        "code": _commit(args.source or ROOT),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "command_wall_seconds": round(wall, 3),
        **profile,
    }
    training = next((r["seconds"] for r in profile["stages"] if r["stage"] == "training"), 0.0)
    # the command's wall time includes what no profile sees: the interpreter, top-level imports
    # before the run starts timing, and the exit
    report["non_training_share_of_command"] = round(1 - training / wall, 5)
    print(f"{report['what']} on {report['cpu']} ({report['cores']} cores), code {report['code']}")
    print(f"command wall {wall:.1f} s; the profile covers {profile['wall_seconds']:.1f} s")
    for row in profile["stages"]:
        print(f"  {row['stage']:<22} {row['seconds']:8.1f} s  {row['share']:6.1%}")
    print(
        f"non-training share: {profile['non_training_share']:.1%} of the profiled time, "
        f"{report['non_training_share_of_command']:.1%} of the command's wall time"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
