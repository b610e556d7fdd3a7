"""Tests of pneumobench/benchmark/ensemble.py."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from pneumobench.commands.main import main
from tests.conftest import store_uri, tiny_config, write_config, write_fake_kermany


@pytest.mark.slow
def test_ensemble_row_is_the_mean_of_its_members_with_a_validation_operating_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.evaluate.operating_points import choose_thresholds
    from pneumobench.tracking import schema as S
    from pneumobench.tracking.reader import read_predictions

    data = write_fake_kermany(tmp_path / "chest_xray", patients_per_class=10)
    raw = tiny_config(
        data,
        models=["simple_cnn", {"name": "resnet18", "pretrained": False, "label": "resnet18-s"}],
    )
    raw["search"]["n_trials"] = 1
    raw["evaluation"] = {**raw["evaluation"], "ensemble": {"top_k": 2}, "tta": "hflip"}
    config = write_config(tmp_path / "experiments.yaml", raw)
    assert main(["run", str(config)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"simple_cnn", "resnet18-s", "ensemble-top2"}
    ensemble = rows["ensemble-top2"]
    assert ensemble["status"] == "evaluated" and ensemble["family"] == "ensemble"
    assert "test_roc_auc_ci_low" in ensemble and ensemble["test_evaluations"] == 1
    store = mlflow.MlflowClient(store_uri())
    members = [read_predictions(store, rows[m]["run_id"]) for m in ("simple_cnn", "resnet18-s")]
    _, _, probs, _ = read_predictions(store, ensemble["run_id"])
    assert np.allclose(probs, np.mean([m[2] for m in members], axis=0), atol=2e-6)
    val = [read_predictions(store, rows[m]["run_id"], S.VAL_PREDICTIONS) for m in rows]
    val_members = [v for v, m in zip(val, rows, strict=True) if m != "ensemble-top2"]
    _, val_y, _, _ = val_members[0]
    mean_val = np.mean([v[2] for v in val_members], axis=0)
    expected = choose_thresholds(val_y, mean_val, 0.95, 0.90)
    for point, threshold in expected.items():
        assert ensemble[f"threshold_{point}"] == pytest.approx(threshold, abs=1e-5)
    # TTA was applied to every final model alike, and recorded
    for label in ("simple_cnn", "resnet18-s"):
        assert store.get_run(rows[label]["run_id"]).data.params["evaluation.tta"] == "hflip"
    # the ensemble deploys: one registered model whose predictions (TTA included) are its
    # logged test predictions, exported to ONNX as one graph; the champion is the top row
    from pneumobench.tracking.models import version_of_run

    mlflow.set_tracking_uri(store_uri())
    assert version_of_run("tiny", ensemble["run_id"]) is not None
    out = tmp_path / "p.csv"
    args = ["--model", "ensemble-top2", "--config", str(config)]
    assert main(["predict", str(data / "test"), *args, "--out", str(out)]) == 0
    import csv

    predicted = {Path(r["path"]).name: float(r["p_pneumonia"]) for r in csv.DictReader(out.open())}
    keys, _, logged, _ = read_predictions(store, ensemble["run_id"])
    gaps = [abs(predicted[Path(k).name] - p[1]) for k, p in zip(keys, logged, strict=True)]
    assert max(gaps) < 1e-5
    onnx = tmp_path / "ensemble.onnx"
    assert main(["export", *args, "--format", "onnx", "--out", str(onnx), "--no-log"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    top = next(r for r in json.loads(capsys.readouterr().out) if r["champion"])
    assert top["deployed"] is True  # the alias went to the top row, ensemble or not
    # a re-run does not look at the ensemble's test set again
    assert main(["run", str(config)]) == 0
    assert "already evaluated" in capsys.readouterr().out
    # and the report shows the saliency grid
    assert main(["report", "--out", str(tmp_path / "r.html"), "--no-log"]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Grad-CAM" in html and "ensemble-top2" in html


@pytest.mark.slow
def test_seed_ensembles_are_rows_and_stand_in_for_their_models_in_the_top_k(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.evaluate.operating_points import choose_thresholds
    from pneumobench.tracking import schema as S
    from pneumobench.tracking.reader import read_predictions

    data = write_fake_kermany(tmp_path / "chest_xray", patients_per_class=10)
    # evaluation.seeds for simple_cnn; the second model's own (empty) seeds override them
    models = ["simple_cnn", {"name": "simple_cnn", "label": "cnn-b", "seeds": []}]
    raw = tiny_config(data, models=models)
    raw["search"]["n_trials"] = 1
    raw["protocol"]["max_epochs"] = 1
    raw["evaluation"] = {**raw["evaluation"], "seeds": [7, 8], "ensemble": {"top_k": 2}}
    config = write_config(tmp_path / "experiments.yaml", raw)
    assert main(["run", str(config)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"simple_cnn", "cnn-b", "simple_cnn-seed-ensemble", "ensemble-top2"}
    assert not rows["cnn-b"].get("seed_runs")
    store = mlflow.MlflowClient(store_uri())
    assert store.get_run(rows["cnn-b"]["run_id"]).data.params["evaluation.seeds"] == "none"
    row = rows["simple_cnn-seed-ensemble"]
    assert row["family"] == "ensemble" and row["test_evaluations"] == 1
    seed_runs = rows["simple_cnn"]["seed_runs"].split(",")
    assert len(seed_runs) == 2 and rows["simple_cnn"]["run_id"] in seed_runs
    tags = store.get_run(row["run_id"]).data.tags
    assert tags[S.ENSEMBLE_KIND] == S.ENSEMBLE_SEEDS and tags[S.ENSEMBLE_OF] == "simple_cnn"
    assert tags[S.ENSEMBLE_MEMBERS] == "simple_cnn/seed-7,simple_cnn/seed-8"
    assert tags[S.ENSEMBLE_RUNS].split(",") == seed_runs
    test = [read_predictions(store, r)[2] for r in seed_runs]
    _, _, probs, _ = read_predictions(store, row["run_id"])
    assert np.allclose(probs, np.mean(test, axis=0), atol=2e-6)
    val = [read_predictions(store, r, S.VAL_PREDICTIONS) for r in seed_runs]
    mean_val = np.mean([v[2] for v in val], axis=0)
    for point, threshold in choose_thresholds(val[0][1], mean_val, 0.95, 0.90).items():
        assert row[f"threshold_{point}"] == pytest.approx(threshold, abs=1e-5)
    # the top-k ensemble takes simple_cnn as its seed ensemble, cnn-b as itself
    top = store.get_run(rows["ensemble-top2"]["run_id"]).data.tags
    assert sorted(top[S.ENSEMBLE_MEMBERS].split(",")) == ["cnn-b", "simple_cnn-seed-ensemble"]
    _, _, top_probs, _ = read_predictions(store, rows["ensemble-top2"]["run_id"])
    members = [
        read_predictions(store, rows[m]["run_id"])[2] for m in ("simple_cnn-seed-ensemble", "cnn-b")
    ]
    assert np.allclose(top_probs, np.mean(members, axis=0), atol=2e-6)
    # seed repeats keep their weights, so both ensembles deploy (seeds flattened into the top-k)
    from pneumobench.tracking.models import version_of_run

    mlflow.set_tracking_uri(store_uri())
    for label in ("simple_cnn-seed-ensemble", "ensemble-top2"):
        assert version_of_run("tiny", rows[label]["run_id"]) is not None, label
    # the report's data and leak sections come from a trained model even when an ensemble leads
    from pneumobench.report import sections

    runs = {m: store.get_run(rows[m]["run_id"]) for m in ("ensemble-top2", "cnn-b")}
    assert [r["split"] for r in sections.data_rows(runs)] == ["train", "val", "test"]
    assert sections.leak_note(runs).startswith("Leak check before training")
    # a re-run looks at neither ensemble's test set again
    assert main(["run", str(config)]) == 0
    out = capsys.readouterr().out
    assert "simple_cnn-seed-ensemble of simple_cnn/seed-7,simple_cnn/seed-8: already" in out
    assert out.count(": already evaluated (--force evaluates again)") == 2
