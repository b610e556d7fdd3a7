"""Tests of pneumobench/benchmark/final.py."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from pneumobench.commands.main import main
from tests.conftest import store_uri, tiny_config, write_config


def test_interrupted_seed_repeats_resume_without_duplicate_runs(
    tmp_path: Path, fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pneumobench.benchmark import final

    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["search"]["n_trials"] = 1
    raw["protocol"]["max_epochs"] = 1
    raw["evaluation"] = {"bootstrap_resamples": 100, "seeds": [7, 8, 9]}
    config = write_config(tmp_path / "e.yaml", raw)
    real_fit, calls = final.fit, {"n": 0}

    def fit_then_stop(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:  # seed 8 is done, seed 9 is cut off
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(final, "fit", fit_then_stop)
    assert main(["run", str(config)]) == 130
    monkeypatch.setattr(final, "fit", real_fit)
    assert main(["run", str(config)]) == 0
    client = mlflow.MlflowClient(store_uri())
    exp = client.get_experiment_by_name("tiny")
    repeats = client.search_runs([exp.experiment_id], "tags.`pneumobench.role` = 'repeat'")
    assert sorted(r.info.run_name for r in repeats) == ["simple_cnn/seed-8", "simple_cnn/seed-9"]
    assert {r.info.status for r in repeats} == {"FINISHED"}
    models = client.search_runs([exp.experiment_id], "tags.`pneumobench.role` = 'model'")
    by_label = {r.data.tags["pneumobench.label"]: r for r in models}
    assert set(by_label) == {"simple_cnn", "simple_cnn-seed-ensemble"}
    assert by_label["simple_cnn"].data.metrics["n_seeds"] == 3
    # the seed ensemble is built once every seed is in, from the resumed and the new repeats
    members = by_label["simple_cnn-seed-ensemble"].data.tags["pneumobench.ensemble_members"]
    assert members == "simple_cnn/seed-7,simple_cnn/seed-8,simple_cnn/seed-9"
