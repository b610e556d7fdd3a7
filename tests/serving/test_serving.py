"""Tests of pneumobench/serving/serving.py."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from pneumobench.commands.main import main


def _leaderboard(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_predict_a_folder_with_a_corrupt_file(
    in_run_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = in_run_folder / "new_images"
    images.mkdir(exist_ok=True)
    sources = sorted((in_run_folder / "chest_xray" / "test").rglob("*.*"))[:5]
    for i, src in enumerate(sources):
        (images / f"img{i}{src.suffix}").write_bytes(src.read_bytes())
    (images / "broken.jpeg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    out = in_run_folder / "predictions.csv"
    capsys.readouterr()
    assert main(["predict", str(images), "--out", str(out)]) == 1  # one file not predicted
    err = capsys.readouterr().err
    assert "broken.jpeg" in err and "pneumobench-tiny@champion" in err
    import csv

    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6
    broken = next(r for r in rows if r["path"].endswith("broken.jpeg"))
    assert broken["error"] and not broken["prediction"]
    good = [r for r in rows if not r["error"]]
    assert all(r["prediction"] in ("normal", "pneumonia") for r in good)
    for r in good:  # the decision is the validation-chosen threshold applied to P(pneumonia)
        score, threshold = float(r["pneumonia_score"]), float(r["threshold"])
        assert (r["prediction"] == "pneumonia") == (score >= threshold)
        assert abs(float(r["p_normal"]) + float(r["p_pneumonia"]) - 1) < 1e-5
    # the same champion, asked by label, gives the same numbers (JSON this time)
    board = _leaderboard(capsys)
    assert main(["predict", str(images), "--model", board[0]["model"], "--format", "json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    by_path = {p["path"]: p for p in payload["predictions"]}
    for r in good:
        assert abs(by_path[r["path"]]["pneumonia_score"] - float(r["pneumonia_score"])) < 1e-6


def test_predicted_probabilities_equal_the_logged_test_predictions(in_run_folder: Path) -> None:
    """predict decodes as training did: on the test files it reproduces the run's own CSV."""
    from pneumobench.serving.bundle import load_bundle
    from pneumobench.serving.predictor import predict_files
    from pneumobench.tracking import models as tracked
    from pneumobench.tracking.reader import read_predictions

    champion = tracked.champion("tiny")
    assert champion is not None
    model, spec = load_bundle(tracked.download_serving(champion.run_id, in_run_folder / "b1"))
    paths, _, probs, _ = read_predictions(mlflow.MlflowClient(), champion.run_id)
    files = [in_run_folder / "chest_xray" / p for p in paths]
    rows = predict_files(model, spec, files)
    got = np.array([r.probs for r in rows])
    assert np.abs(got - probs).max() < 1e-5


def test_predict_explain_writes_an_overlay_beside_each_prediction(
    in_run_folder: Path, tmp_path: Path
) -> None:
    import csv

    from PIL import Image

    images = tmp_path / "few"
    images.mkdir()
    for i, src in enumerate(sorted((in_run_folder / "chest_xray" / "test").rglob("*.*"))[:3]):
        (images / f"x{i}{src.suffix}").write_bytes(src.read_bytes())
    out = tmp_path / "pred.csv"
    assert main(["predict", str(images), "--out", str(out), "--explain"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3
    for row in rows:
        overlay = Path(row["saliency"])
        assert overlay.parent == tmp_path / "pred-saliency" and overlay.is_file()
        with Image.open(overlay) as picture:  # image, overlay, colour bar and a title
            assert picture.mode in ("RGB", "RGBA") and picture.size[0] >= 600
