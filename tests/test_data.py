from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pneumobench.config import parse_config
from pneumobench.data import decode as decode_module
from pneumobench.data import prepare_data
from pneumobench.data.cache import clear_memory_cache
from pneumobench.data.labels import patient_id, pneumonia_subtype
from pneumobench.data.sources.folder import scan_folder
from pneumobench.errors import DataError
from tests.conftest import SHARED_DATA, requires_shared_data, tiny_config


@pytest.mark.parametrize(
    ("name", "patient", "subtype"),
    [
        ("person12_bacteria_45.jpeg", "person12_bacteria", "bacteria"),
        ("person9_virus_3.jpeg", "person9_virus", "virus"),
        ("person1_virus_8_2.jpeg", "person1_virus", "virus"),
        ("person1_Virus_9.jpeg", "person1_virus", "virus"),
        ("person7_scan.jpeg", "person7", None),
        ("IM-0011-0001-0002.jpeg", "IM-0011", None),
        ("NORMAL2-IM-1234-0001.jpeg", "NORMAL2-IM-1234", None),
        ("scan.png", None, None),
    ],
)
def test_file_names_give_patient_and_subtype(
    name: str, patient: str | None, subtype: str | None
) -> None:
    assert patient_id(name) == patient
    assert pneumonia_subtype(name) == subtype


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


def test_validation_split_is_patient_grouped_and_stratified(fake_kermany: Path) -> None:
    config = parse_config(tiny_config(fake_kermany))
    data = prepare_data(config)
    assert not set(data.train.patients) & set(data.val.patients)
    assert not set(data.train.keys) & set(data.val.keys)
    # official val (2 patients per class) merged into train before carving
    assert sum(len(s) for s in (data.train, data.val)) == 2 * (12 + 2) * 2
    assert set(data.val.labels.tolist()) == {0, 1}
    assert 0.15 < len(data.val) / (len(data.train) + len(data.val)) < 0.35
    # images are grey, square, at the configured size
    assert data.train.images.shape[1:] == (32, 32) and data.train.images.dtype == np.uint8
    csv_lines = data.split_csv().splitlines()
    assert csv_lines[0] == "path,split,label,class,patient"
    assert len(csv_lines) == 1 + len(data.train) + len(data.val) + len(data.test)


def test_same_seed_same_split_other_seed_other_split(fake_kermany: Path) -> None:
    a = prepare_data(parse_config(tiny_config(fake_kermany)))
    b = prepare_data(parse_config(tiny_config(fake_kermany)))
    c = prepare_data(parse_config(tiny_config(fake_kermany, seed=99)))
    assert a.val.keys == b.val.keys and a.digest == b.digest
    assert a.val.keys != c.val.keys and a.digest != c.digest


def test_each_image_is_decoded_once_per_dataset_and_size(
    fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = decode_module.decode_image

    def counting(path: Path, size: int, resize: str = "squash") -> np.ndarray:
        calls.append(path)
        return real(path, size, resize)

    monkeypatch.setattr(decode_module, "decode_image", counting)
    config = parse_config(tiny_config(fake_kermany))
    first = prepare_data(config)
    n_images = len(first.train) + len(first.val) + len(first.test)
    assert len(calls) == n_images and len(set(calls)) == n_images
    for _ in range(3):  # more trials and models in this process
        prepare_data(config)
    clear_memory_cache()  # a new process: the on-disk cache answers
    again = prepare_data(config)
    assert len(calls) == n_images
    np.testing.assert_array_equal(again.train.images, first.train.images)
    prepare_data(
        parse_config(
            tiny_config(
                fake_kermany, data={**config.data.model_dump(mode="json"), "image_size": 48}
            )
        )
    )
    assert len(calls) == 2 * n_images  # another size is another decode


def test_truncated_image_is_named(fake_kermany: Path) -> None:
    victim = next((fake_kermany / "test" / "NORMAL").glob("*.jpeg"))
    victim.write_bytes(victim.read_bytes()[:40])
    with pytest.raises(DataError, match=victim.name):
        prepare_data(parse_config(tiny_config(fake_kermany)))


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
