"""`pneumobench evaluate --test-data`: every final model on an external folder made here
(resized, re-encoded, brightness-shifted copies of the test images), counted as one more look,
shown by the leaderboard, the report and the champion's model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image

from pneumobench.commands.main import main
from pneumobench.tracking import reader
from pneumobench.tracking import schema as S


def _shifted_copy(test: Path, out: Path) -> Path:
    """Each test image resized to 90x70, 30 grey levels brighter, saved as PNG."""
    for src in sorted(test.rglob("*")):
        if src.suffix.lower() not in (".png", ".jpeg", ".jpg"):
            continue
        pixels = np.asarray(Image.open(src).convert("L").resize((90, 70)), dtype=np.int16)
        target = out / src.parent.name / f"{src.stem}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels + 30, 0, 255).astype(np.uint8)).save(target)
    return out


@pytest.fixture
def copied_run(finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's finished run with its own copy of the MLflow store (artifacts shared)."""
    for name in ("mlflow.db", "optuna.db", "experiments.yaml"):
        shutil.copy(finished / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def _board(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json", "--resamples", "100"]) == 0
    return json.loads(capsys.readouterr().out)


def test_an_external_folder_is_evaluated_once_counted_and_shown(
    copied_run: Path, finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    external = _shifted_copy(finished / "chest_xray" / "test", copied_run / "site-b")
    config = str(copied_run / "experiments.yaml")
    assert main(["evaluate", config, "--test-data", str(external), "--name", "site-b"]) == 0
    out = capsys.readouterr().out
    assert "external test set site-b" in out and "2 of 2 model(s) evaluated" in out

    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("tiny").experiment_id],
        f"tags.`{S.ROLE}` = '{S.ROLE_EXTERNAL}'",
    )
    assert len(runs) == 2
    run = runs[0]
    (dataset,) = run.inputs.dataset_inputs
    assert [t.value for t in dataset.tags if t.key == "mlflow.data.context"] == ["external:site-b"]
    digest = run.data.tags[S.TEST_DIGEST]
    assert reader.test_set_looks(client, digest) == (2, 1)  # one look per model
    metrics = run.data.metrics
    ranked = S.test_metric("roc_auc")
    low, high = (metrics[k] for k in S.ci_names(ranked))
    assert low <= metrics[ranked] <= high
    shift = metrics[S.shift_metric("roc_auc")]
    assert shift == pytest.approx(metrics[ranked] - metrics[S.internal_metric("roc_auc")])

    rows = _board(capsys)
    for row in rows:
        assert row["external"]["site-b"][ranked] == pytest.approx(
            next(r for r in runs if r.data.tags[S.LABEL] == row["model"]).data.metrics[ranked]
        )
    assert main(["leaderboard"]) == 0
    assert "external test set site-b" in capsys.readouterr().out

    # the same set again: not looked at, unless forced (then counted)
    assert main(["evaluate", config, "--test-data", str(external), "--name", "site-b"]) == 0
    assert "already evaluated on this set" in capsys.readouterr().out
    assert reader.test_set_looks(client, digest) == (2, 1)
    assert main(["evaluate", config, "--test-data", str(external), "--force"]) == 0
    assert reader.test_set_looks(client, digest)[0] == 4  # each forced look counted once


def test_bad_external_input_gets_a_clear_error(
    copied_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(copied_run / "experiments.yaml")
    only_sick = copied_run / "only-sick" / "PNEUMONIA"
    only_sick.mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(only_sick / "person1_virus_1.png")
    assert main(["evaluate", config, "--test-data", str(only_sick.parent)]) == 2
    assert "no NORMAL folder" in capsys.readouterr().err
    (only_sick.parent / "NORMAL").mkdir()
    (only_sick.parent / "NORMAL" / "IM-0001-0001.jpeg").write_bytes(b"not an image")
    assert main(["evaluate", config, "--test-data", str(only_sick.parent)]) == 2
    assert "IM-0001-0001.jpeg" in capsys.readouterr().err
    npz = copied_run / "sick.npz"
    np.savez(npz, test_images=np.zeros((3, 28, 28), np.uint8), test_labels=np.ones((3, 1)))
    assert main(["evaluate", config, "--test-data", str(npz)]) == 2
    assert "no normal images" in capsys.readouterr().err
    assert main(["evaluate", config, "--test-data", str(copied_run / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err


def test_the_report_has_every_clinical_section_and_the_champion_a_model_card(
    copied_run: Path, finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    external = _shifted_copy(finished / "chest_xray" / "test", copied_run / "site-b")
    config_file = copied_run / "experiments.yaml"
    assert main(["evaluate", str(config_file), "--test-data", str(external)]) == 0
    tests = sorted(p.name for p in (finished / "chest_xray" / "test").rglob("*.*"))
    groups = copied_run / "groups.csv"
    groups.write_text(
        "path,sex\n" + "".join(f"{n},{'F' if i % 2 else 'M'}\n" for i, n in enumerate(tests))
    )
    config = yaml.safe_load(config_file.read_text())
    config["data"]["subgroups"] = "groups.csv"
    config_file.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    args = ["report", "--config", str(config_file), "--out", "r.html", "--no-log"]
    assert main([*args, "--resamples", "100"]) == 0
    page = (copied_run / "r.html").read_text()
    for title in (
        "Calibration",
        "Clinical utility",
        "Subgroups",
        "Failure analysis",
        "External test: site-b",
        "Reporting checklist (CLAIM 2024, TRIPOD+AI)",
    ):
        assert f">{title}</h2>" in page, title
    for plot in ("reliability", "decision_curve", "subgroups_forest", "confusion_matrices"):
        assert f'data-plot="{plot}"' in page, plot
    assert "pathogen (file name)" in page and "<td>sex</td>" in page
    assert "33 external testing</td><td>site-b" in page
    assert "deployed threshold" in page

    groups.write_text("path,sex\nperson1_virus_1.png,F\nIM-1-1.png,M,extra\n")
    assert main([*args, "--resamples", "100"]) == 2
    assert "groups.csv), line 3" in capsys.readouterr().err

    config["data"].pop("subgroups")
    config_file.write_text(yaml.safe_dump(config))
    assert main(["promote", "--config", str(config_file)]) == 0
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("pneumobench-tiny", "champion")
    card = version.description
    run = client.get_run(version.run_id)
    assert run.data.tags[S.DATASET_DIGEST] in card
    threshold = run.data.metrics[S.threshold_name(S.DEPLOYED_POINT)]
    assert f"P(pneumonia) >= {threshold:.6f}" in card
    assert "site-b" in card  # its external test
    local = client.download_artifacts(version.run_id, S.MODEL_CARD, str(copied_run / "card"))
    assert (Path(local) / f"pneumobench-tiny-v{version.version}.md").read_text() == card
