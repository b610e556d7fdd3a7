"""`pneumobench ui`: MLflow's UI on the store, the runs view of final models, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from pneumobench.tracking import schema as S
from pneumobench.tracking.ui import VIEW_TAG, display_tags
from tests.servers import free_port


def test_display_tags_show_three_decimals_with_the_interval() -> None:
    key = S.RANKED_METRICS[0]
    low, high = S.ci_names(key)
    tags = display_tags({key: 0.93333, low: 0.9, high: 0.95678, S.test_metric("ece"): 0.04})
    assert tags == {"show.sens_at_spec": "0.933 [0.900, 0.957]", "show.ece": "0.040"}


@pytest.mark.slow
def test_ui_serves_the_final_models_view_and_stops_on_ctrl_c(finished: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pneumobench",
            "ui",
            "--experiment",
            "tiny",
            "--tracking-uri",
            f"sqlite:///{finished / 'mlflow.db'}",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=finished,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    lines = []
    deadline = time.monotonic() + 300
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C stops" in line or proc.poll() is not None:
            break
    text = "".join(lines)
    assert f"http://127.0.0.1:{port}/#/experiments/" in text, text
    assert "searchFilter" not in text  # the saved view filters; a URL filter would drop it
    assert "final models of tiny (2 runs)" in text
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
        assert answer.status == 200
    client = mlflow.MlflowClient(f"sqlite:///{finished / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    view = json.loads(experiment.tags[VIEW_TAG])
    assert "final_evaluation" in view["searchFilter"]
    run = client.search_runs([experiment.experiment_id], view["searchFilter"])[0]
    assert run.data.tags["show.sens_at_spec"].count(".") == 3  # value [low, high]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
