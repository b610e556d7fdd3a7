"""Tests of pneumobench/tracking/models.py."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from pneumobench.commands.main import main
from tests.conftest import store_uri, tiny_config, write_config, write_fake_kermany


def _leaderboard(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_final_model_is_registered_and_the_champion_has_the_alias(
    in_run_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = mlflow.MlflowClient()
    versions = client.search_model_versions("name = 'pneumobench-tiny'")
    assert len(versions) == 2
    for v in versions:
        assert {"test_at_spec_recall", "test_roc_auc", "threshold", "dataset_digest"} <= set(v.tags)
    champion = client.get_model_version_by_alias("pneumobench-tiny", "champion")
    board = _leaderboard(capsys)
    assert champion.run_id == board[0]["run_id"]
    assert champion.tags["pneumobench.label"] == board[0]["model"]


def test_champion_alias_moves_when_a_better_model_arrives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run with a weak model only, then a strong one: the alias moves, and says so."""
    data = write_fake_kermany(tmp_path / "chest_xray", patients_per_class=10)
    raw = tiny_config(data, models=[{"name": "simple_cnn", "label": "weak"}])
    raw["protocol"] = {**raw["protocol"], "max_epochs": 1, "lr": 1e-6}
    raw["search"] = {**raw["search"], "n_trials": 1, "space": {}}
    config = write_config(tmp_path / "experiments.yaml", raw)
    assert main(["run", str(config)]) == 0
    client = mlflow.MlflowClient(store_uri())
    first = client.get_model_version_by_alias("pneumobench-tiny", "champion")
    assert first.tags["pneumobench.label"] == "weak"
    raw["models"] = [
        {"name": "simple_cnn", "label": "weak"},
        {"name": "simple_cnn", "label": "strong", "protocol": {"lr": 3e-3, "max_epochs": 3}},
    ]
    write_config(config, raw)
    capsys.readouterr()
    assert main(["run", str(config)]) == 0
    out = capsys.readouterr().out
    board = _leaderboard(capsys)
    second = client.get_model_version_by_alias("pneumobench-tiny", "champion")
    assert board[0]["model"] == "strong", board  # the fake data are learnable in a few epochs
    assert second.tags["pneumobench.label"] == "strong"
    assert second.version != first.version
    assert f"moved from version {first.version} (weak)" in out
    # promote by another metric keeps or moves it, and says which
    assert main(["promote", "--metric", "roc_auc"]) == 0
    assert "pneumobench-tiny@champion" in capsys.readouterr().out
