"""Tests of pneumobench/data/prepare.py."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from pneumobench.commands.main import main
from pneumobench.config import parse_config
from pneumobench.data import prepare_data
from pneumobench.errors import DataError
from tests.conftest import SHARED_DATA, requires_shared_data, store_uri, tiny_config, write_config


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
    assert "skipped" in out and bad in out
    assert "leak check:" in out and "1 group(s) of byte-identical files" in out  # one line
    assert "data/leaks.csv" in out
    client = mlflow.MlflowClient(store_uri())
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("tiny").experiment_id], "tags.`pneumobench.role` = 'model'"
    )
    assert parent.data.params["data.skipped_images"] == "1"
    assert parent.data.params["data.leak_identical_groups"] == "1"
    # the copy is also a near-duplicate of itself across splits, found by the picture (the
    # synthetic images may hold another chance pair)
    assert int(parent.data.params["data.leak_near_duplicate_pairs"]) >= 1
    listed = Path(client.download_artifacts(parent.info.run_id, "data/skipped_images.txt"))
    assert bad in listed.read_text()
    leaks = Path(client.download_artifacts(parent.info.run_id, "data/leaks.csv")).read_text()
    assert leaked.name in leaks
    assert any(
        line.startswith("near_duplicate") and "person77_bacteria_1" in line and leaked.name in line
        for line in leaks.splitlines()
    )


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


@requires_shared_data
def test_pneumoniamnist_validation_is_disclosed_as_sharing_children_with_train() -> None:
    """The official val split holds images pixel-identical to train images: the content
    digests of the arrays find them, and the disclosure says what validation is."""
    from pneumobench.report.render import store_notes
    from pneumobench.report.rows import LeaderboardRow, RowStatus

    raw = tiny_config(SHARED_DATA / "pneumoniamnist.npz")
    raw["data"] = {"source": "medmnist", "path": str(SHARED_DATA / "pneumoniamnist.npz")}
    data = prepare_data(parse_config(raw))
    across = [g for g in data.leaks.identical if {i.split(":")[0] for i in g} >= {"train", "val"}]
    assert across, "no identical train/val images found"
    assert "shares children with train" in data.validation_note
    assert "identical to train images" in data.validation_note
    row = LeaderboardRow("m", RowStatus.EVALUATED, "r", validation_note=data.validation_note)
    assert any("shares children with train" in n for n in store_notes([row], None))
    # the test split's identity does not depend on the image size
    raw["data"]["image_size"] = 32
    assert prepare_data(parse_config(raw)).test_digest == data.test_digest


@requires_shared_data
def test_the_kermany_carve_keeps_every_person_number_on_one_side() -> None:
    """Grouping by personN across subtypes: no personN straddles train and validation."""
    from pneumobench.data.prepare import _carve
    from pneumobench.data.sources.folder import scan_folder

    root = SHARED_DATA / "chest_xray"
    records = scan_folder(root, "binary")
    labels = np.array([r.label for r in records])
    train = np.array([i for i, r in enumerate(records) if r.split == "train"])
    val = np.array([i for i, r in enumerate(records) if r.split == "val"])
    tr, va = _carve(records, labels, train, val, 0.1, 42)
    side = {}
    for name, idx in (("train", tr), ("val", va)):
        for i in idx:
            person = records[i].key.split("/")[-1].split("_")[0]
            side.setdefault(person, set()).add(name)
    straddling = [p for p, s in side.items() if len(s) > 1]
    assert straddling == []
    assert any(p.startswith("person") for p in side)
