"""Using the winner (issue 13): registered versions and the champion alias, predict on a folder,
ONNX / TorchScript export with parity, the pyfunc model without pneumobench, safe loading."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from pneumobench.cli import main
from tests.conftest import store_uri, tiny_config, write_config, write_fake_kermany


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run of two models, shared by the tests of this module (they only read it)."""
    folder = tmp_path_factory.mktemp("served")
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        data = write_fake_kermany(folder / "chest_xray", patients_per_class=10)
        raw = tiny_config(data)
        raw["search"]["n_trials"] = 1
        config = write_config(folder / "experiments.yaml", raw)
        assert main(["run", str(config)]) == 0
    finally:
        os.chdir(cwd)
    return folder


@pytest.fixture
def in_run_folder(finished: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(finished)
    mlflow.set_tracking_uri(f"sqlite:///{finished / 'mlflow.db'}")
    return finished


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


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_passes_its_parity_check_and_is_logged(
    in_run_folder: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = in_run_folder / f"champion.{fmt}"
    assert main(["export", "--format", fmt, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "largest absolute probability difference" in text
    difference = float(text.split("difference ")[1].split()[0])
    assert difference < 1e-4
    run_id = mlflow.MlflowClient().get_model_version_by_alias("pneumobench-tiny", "champion").run_id
    logged = [f.path for f in mlflow.MlflowClient().list_artifacts(run_id, "export")]
    assert f"export/{out.name}" in logged
    if fmt == "onnx":  # a dynamic batch axis: any batch size runs
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert session.run(None, {"images": np.zeros((3, 1, 32, 32), np.float32)})[0].shape == (
            3,
            2,
        )


def test_parity_failure_is_an_error_and_keeps_no_file(tmp_path: Path) -> None:
    from pneumobench.errors import ModelError
    from pneumobench.serving import export

    class Sneaky(torch.nn.Module):
        """Traces one branch, runs another: the exported file differs from PyTorch."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] == 1:
                return torch.zeros(x.shape[0], 2)
            return torch.stack([x.mean((1, 2, 3)), -x.mean((1, 2, 3))], 1) * 50

    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8), dtype=np.uint8)
    with pytest.raises(ModelError, match="differs from PyTorch"):
        export.export(Sneaky(), images, "torchscript", tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_pyfunc_model_predicts_without_pneumobench(in_run_folder: Path, tmp_path: Path) -> None:
    """Loaded in a subprocess whose import path lacks pneumobench, the registered champion takes
    image bytes and gives the same probabilities as pneumobench's predict."""
    from pneumobench.serving.bundle import load_bundle
    from pneumobench.serving.predictor import predict_files
    from pneumobench.tracking import models as tracked

    files = sorted((in_run_folder / "chest_xray" / "test").rglob("*.*"))[:4]
    champion = tracked.champion("tiny")
    assert champion is not None
    model, spec = load_bundle(tracked.download_serving(champion.run_id, tmp_path / "b"))
    expected = [r.probs for r in predict_files(model, spec, files)]
    payload = [base64.b64encode(f.read_bytes()).decode() for f in files]
    script = textwrap.dedent(
        f"""
        import json, sys
        try:
            import pneumobench
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("pneumobench is importable here: the test proves nothing")
        import mlflow, pandas as pd
        mlflow.set_tracking_uri({store_uri_of(in_run_folder)!r})
        model = mlflow.pyfunc.load_model("models:/pneumobench-tiny@champion")
        out = model.predict(pd.DataFrame({{"image": json.loads(sys.stdin.read())}}))
        print(json.dumps(out[["p_normal", "p_pneumonia", "prediction", "error"]].values.tolist()))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    blocker = tmp_path / "no_pneumobench"  # hides the installed project (an editable install)
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "import importlib.abc\n"
        "class _Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pneumobench' or name.startswith('pneumobench.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    env["PYTHONPATH"] = str(blocker)
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    got = np.array([[r[0], r[1]] for r in rows])
    assert np.abs(got - np.array(expected)).max() < 1e-5
    assert all(r[2] in ("normal", "pneumonia") and not r[3] for r in rows)


def store_uri_of(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def test_weights_are_loaded_without_unpickling(tmp_path: Path) -> None:
    """A weights file holding pickled code is refused, not executed."""
    from pneumobench.errors import ModelError
    from pneumobench.registry import create_model
    from pneumobench.serving.bundle import ModelSpec, load_bundle, write_bundle

    model = create_model("simple_cnn", 2, pretrained=False, image_size=32)
    spec = ModelSpec("m", "simple_cnn", ["normal", "pneumonia"], 32, "pad", 0.0, {"spec": 0.5})
    folder = write_bundle(tmp_path / "b", model, spec, np.zeros((2, 32, 32), np.uint8))
    rebuilt, _ = load_bundle(folder)
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(rebuilt(x), model.eval()(x))

    class Payload:
        def __reduce__(self):  # what a malicious pickle does on load
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"x": Payload()}, folder / "weights.pt")
    with pytest.raises(ModelError, match="not a plain state dict"):
        load_bundle(folder)
    assert not (tmp_path / "pwned").exists()


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
        with Image.open(overlay) as picture:
            assert picture.mode == "RGB" and picture.size[0] >= 32


def test_report_finds_the_optuna_storage_a_run_recorded(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --config or --storage (and no experiments.yaml at hand) the optimisation
    histories are still in the report: each model run recorded where its study lives."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.md"
    uri = f"sqlite:///{finished / 'mlflow.db'}"
    args = ["report", "--experiment", "tiny", "--tracking-uri", uri, "--out", str(out)]
    assert main([*args, "--no-log"]) == 0
    figures = {p.name for p in (tmp_path / "r_files").iterdir()}
    assert {"history_simple_cnn.png", "history_resnet18-scratch.png"} <= figures
    assert "saliency.png" in figures


def test_an_export_the_exporter_refuses_is_a_clear_error(tmp_path: Path) -> None:
    from pneumobench.errors import ModelError
    from pneumobench.serving import export

    class Untraceable(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[float(x.sum().item() > 0), 0.0]]).repeat(len(x), 1)

    images = np.zeros((2, 8, 8), dtype=np.uint8)
    expected = r"cannot be exported as onnx|does not run for the parity check|differs from PyTorch"
    with pytest.raises(ModelError, match=expected):
        export.export(Untraceable(), images, "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
