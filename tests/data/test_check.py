"""Tests of pneumobench/data/check.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from pneumobench.commands.main import main
from tests.conftest import SHARED_DATA, tiny_config, write_config, write_fake_kermany

NPZ = SHARED_DATA / "pneumoniamnist.npz"

needs_npz = pytest.mark.skipif(not NPZ.is_file(), reason=f"{NPZ} not present")


def _planted(tmp_path: Path) -> Path:
    root = write_fake_kermany(tmp_path / "chest_xray", patients_per_class=4, images_per_patient=2)
    train_img = next((root / "train" / "PNEUMONIA").glob("*.*"))
    test_dir = root / "test" / "PNEUMONIA"
    shutil.copy(train_img, test_dir / "person9001_bacteria_1.jpeg")  # identical across splits
    patient = "_".join(train_img.name.split("_")[:2])  # personN_subtype: patient personN
    shutil.copy(next((root / "test" / "NORMAL").glob("*.*")), test_dir / f"{patient}_777.png")
    (root / "train" / "NORMAL" / "IM-9999-0001.jpeg").write_bytes(b"\xff\xd8 truncated")
    (root / "train" / "NORMAL" / "notes.txt").write_text("not an image")
    return root


def test_data_check_reports_every_planted_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _planted(tmp_path)
    assert main(["data", "check", str(root), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert any("IM-9999-0001.jpeg" in u for u in report["unreadable"])
    assert any("notes.txt" in p for p in report["layout_problems"])
    assert report["leaks"]["leak_shared_patients"] == 1
    assert report["leaks"]["leak_identical_groups"] == 1
    assert report["leaks"]["leak_near_duplicate_pairs"] >= 1
    assert report["splits"]["train"]["patients"] == 4 * 2
    assert set(report["splits"]) == {"train", "val", "test"}
    assert not report["clean"]


def test_data_check_clean_folder_table_and_bad_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_fake_kermany(tmp_path / "chest_xray", patients_per_class=3, images_per_patient=1)
    assert main(["data", "check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "clean" in out and "train" in out and "patients" in out
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    config = write_config(tmp_path / "c.yaml", tiny_config(root))
    assert main(["data", "check", str(config)]) == 0


@needs_npz
def test_data_check_medmnist_file(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "check", str(NPZ), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["test"]["images"] == 624
    assert report["splits"]["train"]["per_class"] == {"normal": 1214, "pneumonia": 3494}
    assert report["splits"]["train"]["patients"] is None
    assert code == (0 if report["clean"] else 1)


def test_grey_and_rgb_modes_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_fake_kermany(tmp_path / "chest_xray", patients_per_class=3, images_per_patient=1)
    Image.new("RGB", (50, 40), (9, 9, 9)).save(root / "train" / "NORMAL" / "IM-0777-0001.png")
    main(["data", "check", str(root), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert "RGB" in report["splits"]["train"]["modes"]
    assert "50x40" in report["splits"]["train"]["sizes"]
