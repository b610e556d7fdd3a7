"""Tests of pneumobench/profile.py: where a run's time goes."""

from __future__ import annotations

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


def test_every_model_run_logs_its_stages(finished: Path) -> None:
    client = mlflow.MlflowClient(f"sqlite:///{finished / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], f"tags.`{S.ROLE}` = '{S.ROLE_MODEL}'")
    for run in runs:
        stages = {k: v for k, v in run.data.metrics.items() if k.startswith(S.PROFILE_PREFIX)}
        for stage in ("training", "final_evaluation", "bootstraps", "logging_and_registry"):
            assert stages[f"profile_{stage}_seconds"] > 0, (run.info.run_name, stage)
