"""Tests of pneumobench/tracking/store.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from pneumobench.commands.main import main
from pneumobench.config import parse_config
from pneumobench.data import prepare_data
from tests.conftest import ROOT, tiny_config, write_config

_INIT = """
from pneumobench.search.coordination import Claims
from pneumobench.search.study import storage_for
from pneumobench.config import parse_config
from pneumobench.tracking.store import open_experiment
config = parse_config({"name": "twins", "data": {"path": "x"}, "models": ["simple_cnn"],
    "search": {"storage": "sqlite:///optuna.db"}, "tracking": {"uri": "sqlite:///mlflow.db"}})
Claims(storage_for(config).engine)
print(open_experiment(config.name, config.tracking.uri))
"""


@pytest.mark.slow
def test_two_runs_started_together_in_a_fresh_folder_both_start(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    for attempt in range(2):
        folder = tmp_path / f"fresh{attempt}"
        folder.mkdir()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _INIT],
                cwd=folder,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        results = [p.communicate(timeout=180) for p in procs]
        for proc, (_, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err[-3000:]
        assert results[0][0].strip() == results[1][0].strip()  # one experiment, one id


def test_artifacts_go_beside_the_store_and_unwritable_folders_are_named(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.tracking.store import open_experiment

    stores = tmp_path / "stores"
    uri = f"sqlite:///{stores / 'mlflow.db'}"
    experiment_id = open_experiment("elsewhere", uri)
    location = mlflow.MlflowClient(uri).get_experiment(experiment_id).artifact_location
    assert location == (stores / "mlruns").as_uri()

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    raw = tiny_config(fake_kermany)
    raw["data"]["cache_dir"] = str(blocker / "cache")  # cannot be created: memory only
    data = prepare_data(parse_config(raw))
    assert any("decode cache not written" in note for note in data.notes)
    raw["search"]["checkpoint_dir"] = str(blocker / "checkpoints")
    assert main(["run", str(write_config(tmp_path / "e.yaml", raw))]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is not writable" in err and "search.checkpoint_dir" in err
    assert not Path("mlflow.db").exists()  # nothing was started
