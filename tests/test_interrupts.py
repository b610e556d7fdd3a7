"""Tests of pneumobench/interrupts.py: a burst of SIGTERM never deadlocks a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from tests.conftest import ROOT, tiny_config, write_config


@pytest.mark.slow
def test_a_burst_of_sigterm_stops_the_run_cleanly_and_promptly(
    tmp_path: Path, fake_kermany: Path
) -> None:
    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["protocol"].update(max_epochs=30, patience=30)
    raw["search"]["n_trials"] = 1
    config = write_config(tmp_path / "e.yaml", raw)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pneumobench", "run", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "epoch 2/30" in line or (not line and proc.poll() is not None):
            break
    for _ in range(1000):  # the burst: while the first interrupt is being handled
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the run hung after a burst of SIGTERM") from None
    assert proc.returncode == 130, out[-3000:]
    assert "Resume with the same command" in out
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]


def test_an_interrupt_dropped_in_a_finalizer_is_not_printed_but_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import gc
    import signal as sig
    import sys

    from pneumobench import interrupts

    previous = sig.getsignal(sig.SIGINT), sig.getsignal(sig.SIGTERM), sys.unraisablehook
    seen: list[object] = []
    try:
        sys.unraisablehook = seen.append  # whatever would have printed the traceback
        interrupts.install()

        class Finalized:
            def __del__(self) -> None:
                interrupts._handler(sig.SIGINT, None)  # the signal lands inside a finalizer

        Finalized()
        gc.collect()
        assert not seen and "Traceback" not in capsys.readouterr().err
        assert interrupts.requested()
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    finally:
        sig.signal(sig.SIGINT, previous[0])
        sig.signal(sig.SIGTERM, previous[1])
        sys.unraisablehook = previous[2]
        interrupts._requested = False
