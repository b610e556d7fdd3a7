"""Tests of pneumobench/benchmark/experiment.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest

from pneumobench.commands.main import main
from pneumobench.config.sections import OperatingPointsConfig
from tests.conftest import (
    SHARED_DATA,
    SHARED_WEIGHTS,
    requires_shared_data,
    requires_shared_weights,
    storage_uri,
    store_uri,
    tiny_config,
    write_config,
)

TARGETS = OperatingPointsConfig()


def _runs(experiment: str, role: str):
    client = mlflow.MlflowClient(store_uri())
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], f"tags.`pneumobench.role` = '{role}'")


def _leaderboard(capsys, *args: str) -> list[dict]:
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_run_logs_parents_trials_test_metrics_and_resumes(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "experiments.yaml", tiny_config(fake_kermany))
    assert main(["run", str(config)]) == 0

    parents = _runs("tiny", "model")
    trials = _runs("tiny", "trial")
    assert sorted(r.data.tags["pneumobench.label"] for r in parents) == [
        "resnet18-scratch",
        "simple_cnn",
    ]
    assert len(trials) == 4
    parent_ids = {r.info.run_id for r in parents}
    for trial in trials:
        assert trial.data.tags["mlflow.parentRunId"] in parent_ids
        assert trial.info.run_name.endswith(("trial-000", "trial-001"))
        assert trial.data.tags["pneumobench.trial_state"] == "COMPLETE"
        assert {"lr", "weight_decay", "dropout"} <= set(trial.data.params)
        history = mlflow.MlflowClient(store_uri()).get_metric_history(trial.info.run_id, "val_f1")
        assert [m.step for m in history] == [1, 2]
    client = mlflow.MlflowClient(store_uri())
    for parent in parents:
        tags, metrics = parent.data.tags, parent.data.metrics
        assert parent.info.status == "FINISHED"
        assert tags["pneumobench.final_evaluation"] == "done"
        assert {
            "model",
            "family",
            "num_params",
            "pretrained_source",
            "task",
            "image_size",
            "dataset_digest",
            "git_commit",
            "pneumobench_version",
        } <= set(tags)
        assert tags["precision"] == "fp32"  # the tiny config trains in auto: fp32 on CPU
        for name in ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "pr_auc"):
            assert 0.0 <= metrics[f"test_{name}"] <= 1.0
        assert "best_val_f1" in metrics and "best_lr" in parent.data.params
        artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert {"plots", "predictions", "data"} <= artifacts
        local = Path(
            client.download_artifacts(parent.info.run_id, "predictions/test_predictions.csv")
        )
        lines = local.read_text().splitlines()
        assert lines[0] == "path,patient,y_true,y_pred,p_normal,p_pneumonia"
        assert len(lines) == 1 + 24

    rows = _leaderboard(capsys, "--metric", "recall")
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["champion"]
    keys = [(r["test_at_spec_recall"], r["test_roc_auc"], r["test_pr_auc"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert {"rank", "model", "run_id", "test_recall", "test_pr_auc"} <= set(rows[0])
    rows_f1 = _leaderboard(capsys, "--metric", "test_f1")
    assert rows_f1[0]["test_at_f1_f1"] >= rows_f1[1]["test_at_f1_f1"]
    assert main(["leaderboard", "--metric", "auc"]) == 2  # the error lists valid names
    assert "roc_auc" in capsys.readouterr().err
    for fmt in ("csv", "markdown", "table"):
        assert main(["leaderboard", "--format", fmt]) == 0

    # Re-running the same command adds nothing: no trial, no run, no second test evaluation.
    assert main(["run", str(config)]) == 0
    assert len(_runs("tiny", "trial")) == 4 and len(_runs("tiny", "model")) == 2
    study = optuna.load_study(study_name="tiny/simple_cnn", storage=storage_uri())
    assert len(study.trials) == 2

    # A bigger budget continues the same studies and parents, then re-evaluates.
    assert main(["run", str(config), "--set", "search.n_trials=3", "--models", "simple_cnn"]) == 0
    study = optuna.load_study(study_name="tiny/simple_cnn", storage=storage_uri())
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert len(_runs("tiny", "model")) == 2 and len(_runs("tiny", "trial")) == 5
    # ... and every look at a test set is counted and shown.
    looks = {r["model"]: r["test_evaluations"] for r in _leaderboard(capsys)}
    assert looks == {"simple_cnn": 2, "resnet18-scratch": 1}

    # The logged bundle rebuilds a model that takes [0, 1] grey images and returns class logits.
    import torch

    from pneumobench.serving.bundle import load_bundle
    from pneumobench.tracking.models import download_serving

    parent = next(
        r for r in _runs("tiny", "model") if r.data.tags["pneumobench.label"] == "simple_cnn"
    )
    mlflow.set_tracking_uri(store_uri())
    model, spec = load_bundle(download_serving(parent.info.run_id, tmp_path / "bundle"))
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 2)
    assert spec.label == "simple_cnn" and set(spec.thresholds) == {"sens", "spec", "f1", "acc"}
    # and only the best trial's checkpoint stays on disk
    assert len(list(Path(".pneumobench/checkpoints/tiny/simple_cnn").glob("trial-*.pt"))) == 1


def test_multiclass_run_logs_per_class_and_collapsed_metrics(
    tmp_path: Path, fake_kermany: Path
) -> None:
    raw = tiny_config(fake_kermany, task="multiclass", models=["simple_cnn"])
    raw["search"]["n_trials"] = 1
    assert main(["run", str(write_config(tmp_path / "m.yaml", raw))]) == 0
    (parent,) = _runs("tiny", "model")
    metrics = parent.data.metrics
    for key in (
        "test_recall",
        "test_recall_virus",
        "test_f1_bacteria",
        "test_binary_recall",
        "test_binary_specificity",
    ):
        assert key in metrics


@requires_shared_data
@requires_shared_weights
def test_transfer_learning_end_to_end_on_shared_pneumoniamnist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real thing at small scale: ImageNet MobileNetV2 from the offline cache on PneumoniaMNIST."""
    monkeypatch.setenv("TORCH_HOME", str(SHARED_WEIGHTS))
    monkeypatch.setenv("PNEUMOBENCH_DATA_ROOT", str(SHARED_DATA))
    raw = tiny_config(
        Path("pneumoniamnist.npz"),
        name="shared",
        models=[{"name": "tv:mobilenet_v2", "pretrained": "IMAGENET1K_V1", "label": "mnv2"}],
    )
    raw["data"] = {
        "source": "medmnist",
        "path": "pneumoniamnist.npz",
        "image_size": 32,
        "limit_per_class": 150,
    }
    raw["search"]["n_trials"] = 1
    assert main(["run", str(write_config(tmp_path / "s.yaml", raw))]) == 0
    (parent,) = _runs("shared", "model")
    assert parent.data.tags["pretrained_source"] == "torchvision:MobileNet_V2_Weights.IMAGENET1K_V1"
    assert parent.data.params["data.n_test"] == "300"
    assert parent.data.metrics["test_roc_auc"] > 0.5
    rows = _leaderboard(capsys, "--config", str(tmp_path / "s.yaml"))
    assert rows[0]["model"] == "mnv2" and rows[0]["champion"]


@pytest.mark.slow
def test_statistics_are_logged_and_recomputable_from_the_predictions_csv(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Intervals, operating point, calibration, repeats, and the paired comparison in the
    leaderboard: all recomputed here from the logged predictions to the same values."""

    from pneumobench.evaluate.metrics import classification_metrics
    from pneumobench.evaluate.statistics import bootstrap_intervals, paired_comparison
    from pneumobench.tracking.reader import read_predictions

    raw = tiny_config(fake_kermany)
    raw["search"]["n_trials"] = 1
    raw["evaluation"] = {
        "bootstrap_resamples": 300,
        "operating_points": {"sensitivity": 0.9, "specificity": 0.8},
        "seeds": [7, 8],
        "ensemble": {"seeds": False},  # the seed repeats' statistics alone (no ensemble rows)
    }
    assert main(["run", str(write_config(tmp_path / "e.yaml", raw))]) == 0
    client = mlflow.MlflowClient(store_uri())
    parents = {r.data.tags["pneumobench.label"]: r for r in _runs("tiny", "model")}
    simple = parents["simple_cnn"]
    m = simple.data.metrics
    for key in ("recall", "f1", "roc_auc", "pr_auc", "at_spec_recall", "at_sens_specificity"):
        assert m[f"test_{key}_ci_low"] <= m[f"test_{key}"] <= m[f"test_{key}_ci_high"]
    assert 0 <= m["threshold_sens"] <= 1 and m["val_at_sens_recall"] >= 0.9
    assert m["val_at_spec_specificity"] >= 0.8
    assert 0 <= m["test_ece"] <= 1 and m["n_seeds"] == 2
    assert "test_at_spec_recall_mean" in m and "test_recall_std" in m
    assert simple.data.tags["bootstrap_unit"] == "patient"
    assert {"plots/reliability.png"} <= {
        a.path for a in client.list_artifacts(simple.info.run_id, "plots")
    }
    repeats = _runs("tiny", "repeat")
    assert sorted(r.info.run_name for r in repeats) == [
        "resnet18-scratch/seed-8",
        "simple_cnn/seed-8",
    ]  # seed 7 is the searched model itself

    _, y, probs, patients = read_predictions(client, simple.info.run_id)
    assert patients is not None and len(set(patients)) < len(patients)  # 2 images a patient
    again = classification_metrics(y, probs, ("normal", "pneumonia"))
    for key, value in again.items():
        assert value == pytest.approx(m[f"test_{key}"])
    intervals = bootstrap_intervals(y, probs, n_resamples=300, seed=7, level=0.95, groups=patients)
    assert intervals["recall"] == pytest.approx((m["test_recall_ci_low"], m["test_recall_ci_high"]))

    rows = _leaderboard(capsys, "--config", str(tmp_path / "e.yaml"), "--resamples", "500")
    champion, other = rows  # two models; no seed-ensemble rows when switched off
    assert champion["group"] == "A" and champion["champion"]
    assert other["group"] in ("A", "B") and 0 <= other["p_holm"] <= 1
    # the paired comparison is about the ranked quantity: the mean over both seeds' models of
    # sensitivity at specificity >= 0.8 read off each one's test ROC curve
    from pneumobench.report.leaderboard import _members, _row

    cmp = paired_comparison(
        y,
        _members(client, _row(client.get_run(other["run_id"]))),
        _members(client, _row(client.get_run(champion["run_id"]))),
        "recall",
        groups=patients,
        n_resamples=500,
        seed=int(champion["seed"]),
        level=0.95,
        targets=OperatingPointsConfig(sensitivity=0.9, specificity=0.8),  # the config's
    )
    assert other["vs_champion_diff"] == pytest.approx(cmp.difference)
    assert other["vs_champion_diff"] == pytest.approx(
        other["test_roc_sens_at_spec_mean"] - champion["test_roc_sens_at_spec_mean"]
    )
    assert other["vs_champion_ci_low"] == pytest.approx(cmp.diff_ci[0])
    assert other["p_bootstrap"] == pytest.approx(cmp.p_bootstrap)
    assert np.isfinite(other["p_delong_image_level"])
    ranked_by_mean = [r["test_roc_sens_at_spec_mean"] for r in rows]
    assert ranked_by_mean == sorted(ranked_by_mean, reverse=True)
    assert main(["leaderboard", "--config", str(tmp_path / "e.yaml"), "--metric", "op_recall"]) == 2


def test_missing_weights_of_a_later_model_stop_the_run_before_the_first_trial(
    tmp_path: Path,
    fake_kermany: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    raw = tiny_config(fake_kermany)
    raw["models"] = [
        "simple_cnn",
        {"name": "tv:mobilenet_v2", "pretrained": "IMAGENET1K_V1"},
        {"name": "resnet18", "pretrained": True},
    ]
    started = time.monotonic()
    assert main(["run", str(write_config(tmp_path / "e.yaml", raw))]) == 2
    assert time.monotonic() - started < 45
    err = capsys.readouterr().err
    assert "could not load pretrained weights for 'tv:mobilenet_v2'" in err
    assert not optuna.get_all_study_summaries("sqlite:///optuna.db")  # no model started


PLUGIN = '''
import torch
from torch import nn

from pneumobench.registry import Backbone, register_model


@register_model(family="test")
def flat_mlp(pretrained, in_chans, image_size):
    """No 2-D layer at all: Grad-CAM cannot explain it."""
    return Backbone(nn.Sequential(nn.Flatten(), nn.Linear(in_chans * image_size**2, 8)))


class _OneRow(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, 8)

    def forward(self, x):
        return self.linear(x.flatten(1))[:1]  # one row whatever the batch: a broken plugin


@register_model(family="test")
def one_row(pretrained, in_chans, image_size):
    """Its output has the wrong batch dimension."""
    return Backbone(_OneRow(in_chans * image_size**2))
'''


def test_an_unexplainable_model_and_a_broken_plugin_do_not_stop_the_run(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "odd_models.py").write_text(PLUGIN)
    raw = tiny_config(fake_kermany, models=["flat_mlp", "one_row", "simple_cnn"])
    raw["plugins"] = ["odd_models.py"]
    raw["search"]["n_trials"] = 1
    assert main(["run", str(write_config(tmp_path / "e.yaml", raw))]) == 1  # one model failed
    out = capsys.readouterr().out
    assert "flat_mlp: no Grad-CAM panel" in out
    assert "Traceback" not in out
    parents = {r.data.tags["pneumobench.label"]: r for r in _runs("tiny", "model")}
    assert parents["flat_mlp"].data.tags["pneumobench.final_evaluation"] == "done"
    assert parents["simple_cnn"].data.tags["pneumobench.final_evaluation"] == "done"  # ran on
    assert "one_row" not in parents or (
        parents["one_row"].data.tags.get("pneumobench.final_evaluation") != "done"
    )
    assert "batch" in out.lower()  # the trial's reason names the mismatch


FAKE_PRETRAINED = '''
from torch import nn

from pneumobench.registry import Backbone, register_model


@register_model(family="test", pretrained=True)
def fake_pretrained(pretrained, in_chans, image_size):
    """A small CNN that says it starts from pretrained weights."""
    net = nn.Sequential(nn.Conv2d(in_chans, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Backbone(net, pretrained_source="test:fake" if pretrained else "none")
'''


def test_a_pretrained_backbone_that_would_never_unfreeze_gets_a_warning(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fake.py").write_text(FAKE_PRETRAINED)
    raw = tiny_config(fake_kermany, models=["fake_pretrained"])
    raw["plugins"] = ["fake.py"]
    raw["protocol"].update(max_epochs=1, freeze_epochs=1)
    raw["search"]["n_trials"] = 1
    assert main(["run", str(write_config(tmp_path / "e.yaml", raw))]) == 0
    out = capsys.readouterr().out
    assert "pretrained: test:fake" in out
    assert "the pretrained backbone never unfreezes" in out
