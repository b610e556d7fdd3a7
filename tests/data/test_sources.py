"""Tests of pneumobench/data/sources.py."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from pneumobench.config import parse_config
from pneumobench.data import prepare_data
from pneumobench.data.sources import SOURCES, get_source
from pneumobench.data.sources.base import DataSource
from pneumobench.data.sources.folder import scan_folder
from pneumobench.errors import DataError
from tests.conftest import (
    SHARED_DATA,
    requires_shared_data,
    tiny_config,
)


def _npz(path: Path, **over: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1)
    arrays.update(over)
    np.savez(path, **arrays)
    return path


def _medmnist(path: Path) -> object:
    raw = tiny_config(path)
    raw["data"] = {"source": "medmnist", "path": str(path), "image_size": 28}
    return prepare_data(parse_config(raw))


def test_folder_labels_binary_and_multiclass(fake_kermany: Path) -> None:
    binary = scan_folder(fake_kermany, "binary")
    multi = scan_folder(fake_kermany, "multiclass")
    assert {r.label for r in binary} == {0, 1}
    assert {r.label for r in multi} == {0, 1, 2}
    for r in multi:
        name = Path(r.key).name
        expected = 0 if "NORMAL" in r.key else (1 if "bacteria" in name else 2)
        assert r.label == expected
    assert {Path(r.key).suffix for r in binary} == {".png", ".jpeg"}


def test_multiclass_needs_subtype_in_name(fake_kermany: Path) -> None:
    bad = fake_kermany / "train" / "PNEUMONIA" / "scan_17.jpeg"
    next((fake_kermany / "train" / "PNEUMONIA").glob("person0_bacteria_*")).rename(bad)
    with pytest.raises(DataError, match=r"scan_17\.jpeg.*neither 'bacteria' nor 'virus'"):
        scan_folder(fake_kermany, "multiclass")
    assert scan_folder(fake_kermany, "binary")  # binary does not care


def test_litter_is_ignored_but_stray_files_are_named(fake_kermany: Path) -> None:
    (fake_kermany / "train" / "NORMAL" / ".DS_Store").write_text("x")
    (fake_kermany / "train" / "NORMAL" / "._IM-0000-0001.jpeg").write_text("x")
    scan_folder(fake_kermany, "binary")
    (fake_kermany / "train" / "NORMAL" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt: not an image"):
        scan_folder(fake_kermany, "binary")


def test_missing_split_is_a_clear_error(fake_kermany: Path) -> None:
    import shutil

    shutil.rmtree(fake_kermany / "test")
    with pytest.raises(DataError, match=r"missing split folder.*test"):
        prepare_data(parse_config(tiny_config(fake_kermany)))


def test_medmnist_missing_file_says_where_to_put_what(tmp_path: Path) -> None:
    raw = tiny_config(
        tmp_path / "nowhere", data={"source": "medmnist", "path": str(tmp_path / "nowhere")}
    )
    with pytest.raises(DataError, match=r"pneumoniamnist\.npz.*md5.*https?://"):
        prepare_data(parse_config(raw))


@requires_shared_data
def test_medmnist_official_splits_from_shared_file() -> None:
    raw = tiny_config(
        SHARED_DATA / "pneumoniamnist.npz",
        data={
            "source": "medmnist",
            "path": str(SHARED_DATA / "pneumoniamnist.npz"),
            "image_size": 32,
        },
    )
    data = prepare_data(parse_config(raw))
    assert (len(data.train), len(data.val), len(data.test)) == (4708, 524, 624)
    assert data.test.images.shape == (624, 32, 32)
    assert int(data.test.labels.sum()) == 390


@requires_shared_data
def test_shared_kermany_folder_multiclass_counts_and_patient_split() -> None:
    raw = tiny_config(
        SHARED_DATA / "chest_xray",
        task="multiclass",
        data={
            "source": "folder",
            "path": str(SHARED_DATA / "chest_xray"),
            "image_size": 32,
            "val_fraction": 0.1,
        },
    )
    data = prepare_data(parse_config(raw))
    assert len(data.test) == 624
    assert np.bincount(data.test.labels).tolist() == [234, 242, 148]
    assert len(data.train) + len(data.val) == 5216 + 16
    assert not set(data.train.patients) & set(data.val.patients)


def test_dangling_and_looping_links_are_named_or_skipped(fake_kermany: Path) -> None:
    folder = fake_kermany / "train" / "PNEUMONIA"
    (folder / "person900_bacteria_1.jpeg").symlink_to(folder / "gone.jpeg")
    (folder / "person901_bacteria_1.jpeg").symlink_to(folder / "person901_bacteria_1.jpeg")
    raw = tiny_config(fake_kermany)
    with pytest.raises(DataError) as info:
        prepare_data(parse_config(raw))
    text = str(info.value)
    assert "person900_bacteria_1.jpeg: missing: a broken symbolic link" in text
    assert "person901_bacteria_1.jpeg: a symbolic link that loops" in text
    raw["data"]["on_bad_image"] = "skip"
    data = prepare_data(parse_config(raw))
    assert len(data.skipped) == 2


def test_npz_files_are_checked_and_never_unpickled(tmp_path: Path) -> None:
    data = _medmnist(_npz(tmp_path / "my-own-name.npz"))  # any file name
    assert len(data.train) == 40
    cases = {
        "labels.npz": (dict(val_labels=np.full((10, 1), 3)), "val_labels holds [3]"),
        "shape.npz": (dict(test_images=np.zeros((10, 28), np.uint8)), "test_images must be"),
        "count.npz": (dict(train_labels=np.zeros((39, 1))), "one label per image (40)"),
    }
    for name, (over, message) in cases.items():
        with pytest.raises(DataError, match=re.escape(message)):
            _medmnist(_npz(tmp_path / name, **over))
    page = tmp_path / "page.npz"
    page.write_text("<html><body>Sign in</body></html>")
    with pytest.raises(DataError) as info:
        _medmnist(page)
    assert "not a readable MedMNIST .npz file" in str(info.value)
    assert "allow_pickle" not in str(info.value)


def test_non_utf8_file_names_and_empty_files_are_named(fake_kermany: Path) -> None:
    folder = fake_kermany / "train" / "NORMAL"
    name = os.fsdecode(b"IM-0777-0001-\xff.jpeg")
    (folder / name).write_bytes((next(folder.glob("*.jpeg"))).read_bytes())
    with pytest.raises(DataError, match="not valid UTF-8"):
        prepare_data(parse_config(tiny_config(fake_kermany)))
    (folder / name).unlink()
    (folder / "IM-0778-0001.jpeg").write_bytes(b"")
    with pytest.raises(DataError, match=r"IM-0778-0001.jpeg: empty file \(0 bytes\)"):
        prepare_data(parse_config(tiny_config(fake_kermany)))


def test_every_registered_source_implements_the_interface() -> None:
    for name in SOURCES:
        source = get_source(name)
        assert isinstance(source, DataSource) and source.name == name
