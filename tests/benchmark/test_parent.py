"""Tests of pneumobench/benchmark/parent.py."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from tests.conftest import tiny_config, write_config


def test_a_worker_with_other_data_cannot_join_the_study(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.commands.main import main

    config = tiny_config(
        fake_kermany,
        models=["simple_cnn"],
        protocol={"max_epochs": 1, "patience": 1, "batch_size": 16},
        search={"n_trials": 1, "pruner": "none", "storage": "sqlite:///optuna.db"},
    )
    path = write_config(tmp_path / "experiments.yaml", config)
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    assert main(["run", str(path), "--set", "data.val_fraction=0.4"]) == 2
    err = capsys.readouterr().err
    assert "differ from the data" in " ".join(err.split())


def test_every_parent_run_logs_the_resolved_config_whole(finished: Path) -> None:
    """As Lightning's SaveConfigCallback: the validated config, every default filled in."""
    import yaml

    from pneumobench.config import parse_config

    client = mlflow.MlflowClient(f"sqlite:///{finished / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], "tags.`pneumobench.role` = 'model'")
    assert runs
    for run in runs:
        text = Path(client.download_artifacts(run.info.run_id, "config/resolved.yaml")).read_text()
        resolved = yaml.safe_load(text)
        assert resolved["evaluation"]["bootstrap_resamples"] == 200  # the file's value
        assert resolved["evaluation"]["alpha"] == 0.05  # a default, filled in
        assert parse_config(resolved).name == "tiny"  # it is a valid config again
