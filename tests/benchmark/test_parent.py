"""Tests of pneumobench/benchmark/parent.py."""

from __future__ import annotations

from pathlib import Path

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
