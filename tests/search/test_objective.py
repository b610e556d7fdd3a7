"""Tests of pneumobench/search/objective.py."""

from __future__ import annotations

from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import storage_uri, store_uri, tiny_config, write_config


def _trial_runs() -> list:
    client = mlflow.MlflowClient(store_uri())
    exp = client.get_experiment_by_name("tiny")
    return client.search_runs([exp.experiment_id], "tags.`pneumobench.role` = 'trial'")


def test_oom_and_nan_trials_are_recorded_and_the_study_completes(
    tmp_path: Path, fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from pneumobench.commands.main import main
    from pneumobench.search import objective as trial_module

    real_fit = trial_module.fit
    calls = {"n": 0}

    def faulty_fit(model, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if calls["n"] == 2:
            with torch.no_grad():
                model.head[1].weight.fill_(float("nan"))
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(trial_module, "fit", faulty_fit)
    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["search"]["n_trials"] = 3
    assert main(["run", str(write_config(tmp_path / "exp.yaml", raw))]) == 0
    study = optuna.load_study(study_name="tiny/simple_cnn", storage=storage_uri())
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    runs = {r.info.run_name: r for r in _trial_runs()}
    oom = runs["simple_cnn/trial-000"].data.tags["pneumobench.fail_reason"]
    assert "out of memory" in oom and "smaller protocol.batch_size" in oom
    assert "nan" in runs["simple_cnn/trial-001"].data.tags["pneumobench.fail_reason"]
    assert runs["simple_cnn/trial-000"].info.status == "FAILED"


def test_a_model_whose_every_trial_fails_is_listed_as_failed(
    tmp_path: Path,
    fake_kermany: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from pneumobench.commands.main import main
    from pneumobench.search import objective as trial_module
    from pneumobench.train.protocol import DivergedError

    real_fit = trial_module.fit

    def fit_except_resnet(model, *args, **kwargs):
        if model.registry_name == "resnet18":
            raise DivergedError("training loss became nan in epoch 1")
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(trial_module, "fit", fit_except_resnet)
    raw = tiny_config(fake_kermany)
    raw["search"]["n_trials"] = 1
    config = write_config(tmp_path / "experiments.yaml", raw)
    assert main(["run", str(config)]) == 1  # something failed: the exit code says so
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["simple_cnn"]["rank"] == 1
    assert (
        rows["resnet18-scratch"]["status"] == "failed" and rows["resnet18-scratch"]["rank"] is None
    )
