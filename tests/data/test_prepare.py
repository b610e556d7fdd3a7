"""Tests of pneumobench/data/prepare.py."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from pneumobench.commands.main import main
from pneumobench.config import parse_config
from pneumobench.data import prepare_data
from pneumobench.errors import DataError
from tests.conftest import store_uri, tiny_config, write_config


def _break_truncated(root: Path) -> str:
    victim = next((root / "train" / "NORMAL").glob("*.jpeg"))
    victim.write_bytes(victim.read_bytes()[:50])
    return victim.name


def test_skip_bad_images_and_report_leaks(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    bad = _break_truncated(fake_kermany)
    (fake_kermany / "train" / "NORMAL" / ".DS_Store").write_text("litter")  # ignored quietly
    leaked = next((fake_kermany / "test" / "PNEUMONIA").glob("*.jpeg"))
    shutil.copy(leaked, fake_kermany / "train" / "PNEUMONIA" / "person77_bacteria_1.jpeg")
    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["data"]["on_bad_image"] = "skip"
    raw["search"]["n_trials"] = 1
    assert main(["run", str(write_config(tmp_path / "exp.yaml", raw))]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and bad in out and "leak: identical" in out
    client = mlflow.MlflowClient(store_uri())
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("tiny").experiment_id], "tags.`pneumobench.role` = 'model'"
    )
    assert parent.data.params["data.skipped_images"] == "1"
    assert parent.data.params["data.leak_identical_groups"] == "1"
    # the copy is also a near-duplicate of itself across splits, found by the picture
    assert parent.data.params["data.leak_near_duplicate_pairs"] == "1"
    listed = Path(client.download_artifacts(parent.info.run_id, "data/skipped_images.txt"))
    assert bad in listed.read_text()
    leaks = Path(client.download_artifacts(parent.info.run_id, "data/leaks.csv"))
    assert leaked.name in leaks.read_text()


def test_a_carve_that_leaves_a_class_out_of_validation_is_an_error(fake_kermany: Path) -> None:
    normals = sorted((fake_kermany / "train" / "NORMAL").iterdir())
    for f in normals[1:]:
        f.unlink()
    for f in (fake_kermany / "val" / "NORMAL").iterdir():
        f.unlink()
    config = parse_config(tiny_config(fake_kermany))
    with pytest.raises(DataError) as info:
        prepare_data(config)
    text = str(info.value)
    assert "no normal image in val" in text and "train: 1 normal" in text
    assert "data.val_fraction" in text


def test_an_empty_official_val_class_is_fine_when_val_is_merged(fake_kermany: Path) -> None:
    for f in (fake_kermany / "val" / "NORMAL").iterdir():
        f.unlink()
    data = prepare_data(parse_config(tiny_config(fake_kermany)))  # 19. merged: no error
    assert set(data.val.labels.tolist()) == {0, 1}
