"""See why, and combine (issue 15): Grad-CAM maps, soft-vote ensembles as leaderboard rows,
test-time augmentation applied alike, EMA weights evaluated when EMA is on."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from pneumobench.benchmark.saliency import grad_cam, panel_indices, target_layer
from pneumobench.cli import main
from pneumobench.registry import create_model
from tests.conftest import store_uri, tiny_config, write_config, write_fake_kermany


@pytest.mark.parametrize("name", ["simple_cnn", "resnet18", "timm:vit_tiny_patch16_224"])
def test_saliency_maps_have_the_input_size_and_are_deterministic(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, 2, pretrained=False, image_size=32)
    images = np.random.default_rng(0).integers(0, 255, (6, 32, 32), dtype=np.uint8)
    targets = np.array([0, 1, 1, 0, 1, 0])
    first = grad_cam(model, images, targets)
    again = grad_cam(model, images, targets)
    assert first.shape == images.shape and first.dtype == np.float32
    assert np.array_equal(first, again)
    assert first.min() >= 0 and first.max() <= 1
    assert (first.reshape(6, -1).max(1) > 0).any()  # something is explained
    _, kind = target_layer(model, 32)
    assert kind == ("tokens" if "vit" in name else "map")


def test_the_panel_is_the_same_for_every_model_and_stratified() -> None:
    labels = np.array([0] * 40 + [1] * 60)
    a, b = panel_indices(labels, seed=3), panel_indices(labels, seed=3)
    assert np.array_equal(a, b)
    assert (labels[a] == 0).sum() == 16 and (labels[a] == 1).sum() == 16


def test_tta_is_the_mean_of_the_image_and_its_mirror() -> None:
    from pneumobench.benchmark.training import predict

    class Feeder:
        def __init__(self, x: torch.Tensor) -> None:
            self.x = x

        def batches(self, batch_size: int):
            yield self.x, torch.zeros(len(self.x), dtype=torch.long)

        def __len__(self) -> int:
            return len(self.x)

    torch.manual_seed(0)
    model = create_model("simple_cnn", 2, pretrained=False, image_size=32).eval()
    x = torch.rand(5, 1, 32, 32)
    plain, _ = predict(model, Feeder(x), 8, torch.device("cpu"))
    mirror, _ = predict(model, Feeder(torch.flip(x, dims=[3])), 8, torch.device("cpu"))
    tta, _ = predict(model, Feeder(x), 8, torch.device("cpu"), tta="hflip")
    assert np.allclose(tta, (plain + mirror) / 2, atol=1e-6)


def test_ema_weights_are_what_is_kept_when_ema_is_on(
    fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With EMA on, the weights fit() validates and returns are the EMA's, not the raw ones."""
    import timm.utils

    from pneumobench.benchmark.training import fit
    from pneumobench.config import AugmentConfig, ProtocolConfig, parse_config
    from pneumobench.data.prepare import prepare_data

    seen = []

    class Recording(timm.utils.ModelEmaV3):
        def update(self, model, step=None):
            super().update(model, step)
            self.raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
            seen.append(self)

    monkeypatch.setattr(timm.utils, "ModelEmaV3", Recording)
    data = prepare_data(parse_config(tiny_config(fake_kermany)))
    torch.manual_seed(0)
    model = create_model("simple_cnn", 2, pretrained=False, image_size=32)
    protocol = ProtocolConfig(max_epochs=1, patience=1, batch_size=8, lr=1e-2, ema_decay=0.9)
    fit(
        model,
        data,
        protocol,
        augment=AugmentConfig(enabled=False),
        objective="val_loss",
        direction="minimize",
        device=torch.device("cpu"),
        seed=0,
    )
    ema = seen[-1]
    kept, averaged = model.state_dict(), ema.module.state_dict()
    assert all(torch.equal(kept[k], averaged[k]) for k in kept)
    key = "backbone.0.weight"
    assert not torch.allclose(kept[key], ema.raw[key])  # the raw weights were not kept


def test_ensemble_row_is_the_mean_of_its_members_with_a_validation_operating_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.benchmark.operating_points import choose_thresholds
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
    # a re-run does not look at the ensemble's test set again
    assert main(["run", str(config)]) == 0
    assert "already evaluated" in capsys.readouterr().out
    # and the report shows the saliency grid
    assert main(["report", "--out", str(tmp_path / "r.html"), "--no-log"]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Grad-CAM" in html and "ensemble-top2" in html


def test_seed_ensembles_are_rows_and_stand_in_for_their_models_in_the_top_k(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.benchmark.operating_points import choose_thresholds
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
    # the report's data and leak sections come from a trained model even when an ensemble leads
    from pneumobench.benchmark import report

    runs = {m: store.get_run(rows[m]["run_id"]) for m in ("ensemble-top2", "cnn-b")}
    assert [r["split"] for r in report._data_rows(runs)] == ["train", "val", "test"]
    assert report._leak_note(runs).startswith("Leak check before training")
    # a re-run looks at neither ensemble's test set again
    assert main(["run", str(config)]) == 0
    out = capsys.readouterr().out
    assert "simple_cnn-seed-ensemble of simple_cnn/seed-7,simple_cnn/seed-8: already" in out
    assert out.count(": already evaluated (--force evaluates again)") == 2
