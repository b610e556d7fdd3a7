"""Tests of pneumobench/profile.py: where a run's time goes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import pytest

from pneumobench import profile
from pneumobench.tracking import schema as S


def test_nested_stages_are_subtracted_and_belong_to_the_current_model() -> None:
    profile.reset()
    with profile.model("resnet18"), profile.stage("training"):
        time.sleep(0.05)
        with profile.stage("final evaluation"):
            time.sleep(0.03)
            with profile.stage("bootstraps"):
                time.sleep(0.02)
    with profile.stage("ensembles"):
        time.sleep(0.01)
    mine = profile.of_model("resnet18")
    assert mine["training"] == pytest.approx(0.05, abs=0.02)
    assert mine["final evaluation"] == pytest.approx(0.03, abs=0.015)
    assert mine["bootstraps"] == pytest.approx(0.02, abs=0.015)
    assert "ensembles" not in mine and "ensembles" in profile.totals()
    rows = profile.report(wall=0.2)
    assert rows[-1][0] == "other" and sum(s for _, s, _ in rows) == pytest.approx(0.2)
    assert S.profile_metrics({"final evaluation": 1.5}) == {"profile_final_evaluation_seconds": 1.5}


def test_a_new_run_forgets_the_last_runs_models_but_keeps_its_own_stages() -> None:
    profile.reset()
    with profile.stage("start-up"):
        pass
    with profile.model("a"), profile.stage("training"):
        pass
    profile.forget_models()
    assert profile.of_model("a") == {} and "start-up" in profile.totals()
    with profile.stage("training", "b"):
        time.sleep(0.02)
    report = profile.as_json(wall=0.1)
    assert [row["stage"] for row in report["stages"]] == ["start-up", "training", "other"]
    assert report["non_training_share"] == pytest.approx(0.8, abs=0.15)


def test_the_run_writes_its_profile_and_its_stages_cover_the_run(finished: Path) -> None:
    """``run --profile-out``: every stage of the session's run, training inside ``fit`` only."""
    report = json.loads((finished / "profile.json").read_text())
    seconds = {row["stage"]: row["seconds"] for row in report["stages"]}
    for stage in (
        "start-up",
        "setup",
        "training",
        "search bookkeeping",
        "final evaluation",
        "bootstraps",
        "saliency",
        "logging and registry",
        "report",
    ):
        assert seconds[stage] > 0, stage
    assert sum(seconds.values()) == pytest.approx(report["wall_seconds"], abs=0.01)
    assert 0 <= seconds["other"] < 0.2 * report["wall_seconds"]  # the stages name nearly all
    assert 0 < report["non_training_share"] < 1


def test_profile_out_must_be_writable_and_is_not_for_workers(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.commands.main import main
    from tests.conftest import tiny_config, write_config

    config = write_config(tmp_path / "e.yaml", tiny_config(fake_kermany))
    assert main(["run", str(config), "--profile-out", str(tmp_path / "no" / "p.json")]) == 2
    assert "--profile-out" in capsys.readouterr().err
    assert main(["run", str(config), "--workers", "2", "--profile-out", "p.json"]) == 2
    assert "drop --workers" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "mlflow.db").exists()  # refused before any run was created


def test_every_model_run_logs_its_stages(finished: Path) -> None:
    client = mlflow.MlflowClient(f"sqlite:///{finished / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], f"tags.`{S.ROLE}` = '{S.ROLE_MODEL}'")
    for run in runs:
        stages = {k: v for k, v in run.data.metrics.items() if k.startswith(S.PROFILE_PREFIX)}
        for stage in ("training", "final_evaluation", "bootstraps", "logging_and_registry"):
            assert stages[f"profile_{stage}_seconds"] > 0, (run.info.run_name, stage)
