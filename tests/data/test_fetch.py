"""Tests of pneumobench/data/fetch.py."""

from __future__ import annotations

import hashlib
import io
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pneumobench.commands.main import main
from pneumobench.data.fetch.download import RemoteFile, fetch
from pneumobench.data.fetch.kermany import DONE_MARKER, fetch_kermany
from pneumobench.data.fetch.medmnist import fetch_pneumoniamnist, remote_file
from pneumobench.errors import DataError
from tests.conftest import SHARED_DATA, tiny_config, write_config, write_fake_kermany
from tests.servers import file_server, free_port

NPZ = SHARED_DATA / "pneumoniamnist.npz"

needs_npz = pytest.mark.skipif(not NPZ.is_file(), reason=f"{NPZ} not present")


def _remote(payload: bytes) -> RemoteFile:
    return RemoteFile(
        "blob.bin", "http://unused.invalid/blob.bin", md5=hashlib.md5(payload).hexdigest()
    )


def _kermany_zip(tmp_path: Path) -> bytes:
    """A tiny archive in the layout of Mendeley's ChestXRay2017.zip, litter included."""
    source = write_fake_kermany(tmp_path / "src", patients_per_class=3, images_per_patient=1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source).as_posix()
            if path.is_file() and not rel.startswith("val/"):  # Mendeley has no val folder
                archive.write(path, f"chest_xray/{rel}")
                archive.writestr(f"__MACOSX/chest_xray/{Path(rel).parent}/._{path.name}", b"\0")
        archive.writestr("chest_xray/.DS_Store", b"\0\0")
        archive.writestr("chest_xray/train/.DS_Store", b"\0\0")
        archive.writestr("chest_xray/../evil.jpeg", b"escape attempt")
    shutil.rmtree(source)
    return buffer.getvalue()


@needs_npz
def test_real_npz_from_a_mirror_is_md5_checked_and_found_again(tmp_path: Path) -> None:
    payload = NPZ.read_bytes()
    with file_server({"pneumoniamnist.npz": payload}) as (url, log):
        got = fetch_pneumoniamnist(tmp_path / "data", mirror=url, progress=False)
        again = fetch_pneumoniamnist(tmp_path / "data", mirror=url, progress=False)
    assert got == again == tmp_path / "data" / "pneumoniamnist.npz"
    assert hashlib.md5(got.read_bytes()).hexdigest() == remote_file(28).md5
    assert len(log) == 1  # the verified copy is not downloaded twice
    assert sorted(p.name for p in got.parent.iterdir() if not p.name.startswith(".")) == [
        "pneumoniamnist.npz"
    ]


def test_md5_mismatch_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    wrong = {"pneumoniamnist.npz": b"not the real file" * 100}
    expected = r"md5 .* expected 28209eda62fecd6e6a2d98b1501bb15f"
    with file_server(wrong) as (url, _), pytest.raises(DataError, match=expected):
        fetch_pneumoniamnist(tmp_path, mirror=url, progress=False)
    assert not (tmp_path / "pneumoniamnist.npz").exists()
    assert not (tmp_path / "pneumoniamnist.npz.part").exists()


def test_interrupted_download_resumes_with_a_range_request(tmp_path: Path) -> None:
    payload = np.random.default_rng(0).bytes(3 << 20)
    remote = _remote(payload)
    with file_server({"blob.bin": payload}, cut_after=1 << 20) as (url, log):
        with pytest.raises(DataError, match="resumes"):
            fetch(remote, tmp_path / "blob.bin", mirror=url, progress=False)
        assert not (tmp_path / "blob.bin").exists()  # never a half file under the final name
        part = (tmp_path / "blob.bin.part").stat().st_size
        assert 0 < part < len(payload)
        fetch(remote, tmp_path / "blob.bin", mirror=url, progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == payload
    assert log[1] == ("blob.bin", f"bytes={part}-")  # only the rest was asked for
    assert not (tmp_path / "blob.bin.part").exists()


def test_server_without_ranges_restarts_cleanly(tmp_path: Path) -> None:
    payload = np.random.default_rng(1).bytes(2 << 20)
    remote = _remote(payload)
    (tmp_path / "blob.bin.part").write_bytes(b"stale bytes of another attempt")
    with file_server({"blob.bin": payload}, ranges=False) as (url, _):
        fetch(remote, tmp_path / "blob.bin", mirror=url, progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == payload


def test_unreachable_mirror_fails_in_seconds_with_the_way_out(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        fetch_pneumoniamnist(tmp_path, mirror=dead, progress=False)
    assert time.monotonic() - start < 10
    assert "cannot download" in str(info.value) and "--mirror" in str(info.value)


def test_run_config_fetches_a_missing_file_or_says_where_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """data.download: auto fetches through $PNEUMOBENCH_MIRROR; never (or offline) stops with the
    URL and md5 of the file to get by hand."""
    from pneumobench.config import load_config
    from pneumobench.data.prepare import prepare_data

    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(-1, 1)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    base = tiny_config(tmp_path / "data" / "pneumoniamnist.npz")
    base["data"].update(source="medmnist", image_size=32)
    base["data"].pop("val_fraction", None)
    never = write_config(
        tmp_path / "never.yaml", {**base, "data": {**base["data"], "download": "never"}}
    )
    with pytest.raises(DataError, match=r"pneumoniamnist\.npz.*md5 28209eda"):
        prepare_data(load_config(never))
    monkeypatch.setenv("PNEUMOBENCH_MIRROR", f"http://127.0.0.1:{free_port()}")
    auto = write_config(tmp_path / "auto.yaml", base)
    with pytest.raises(
        DataError, match=r"(?s)fetching it failed: cannot download.*download: never"
    ):
        prepare_data(load_config(auto))
    with file_server({"pneumoniamnist.npz": payload}) as (url, _):
        monkeypatch.setenv("PNEUMOBENCH_MIRROR", url)
        # the test file is not the published one: its md5 is refused, nothing is kept
        with pytest.raises(DataError, match="md5"):
            prepare_data(load_config(auto))
        assert not (tmp_path / "data" / "pneumoniamnist.npz").exists()


def test_medmnist_size_key_picks_the_medmnist_plus_file(tmp_path: Path) -> None:
    from pneumobench.config import load_config
    from pneumobench.data.sources.medmnist import medmnist_file

    base = tiny_config(tmp_path / "data")
    base["data"].update(source="medmnist", medmnist_size=224)
    base["data"].pop("val_fraction", None)
    config = load_config(write_config(tmp_path / "c.yaml", base))
    assert medmnist_file(config.data_path(), config.data.medmnist_size).name == (
        "pneumoniamnist_224.npz"
    )
    assert remote_file(224).url.endswith("pneumoniamnist_224.npz?download=1")
    with pytest.raises(DataError, match="medmnist_size is 64"):
        medmnist_file(tmp_path / "pneumoniamnist_224.npz", 64)


def test_fetch_kermany_extracts_the_archive_into_the_kaggle_layout(tmp_path: Path) -> None:
    from pneumobench.data.fetch import kermany

    payload = _kermany_zip(tmp_path)
    archive = RemoteFile(
        "ChestXRay2017.zip", kermany.ARCHIVE.url, sha256=hashlib.sha256(payload).hexdigest()
    )
    with file_server({"ChestXRay2017.zip": payload}) as (url, log):
        folder = fetch_kermany(tmp_path / "data", mirror=url, archive=archive, progress=False)
        assert fetch_kermany(tmp_path / "data", mirror=url, archive=archive) == folder
    assert len(log) == 1
    assert (folder / DONE_MARKER).is_file()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.*"))
    assert [f for f in files if f != DONE_MARKER] == sorted(
        f"{s}/{c}/{n}"
        for s, c, n in (f.split("/") for f in files if f != DONE_MARKER)
        if s in ("train", "test") and c in ("NORMAL", "PNEUMONIA") and not n.startswith("._")
    )
    assert len(files) - 1 == 2 * 3 + 2 * 1  # 3 train + 1 test patients per class, 1 image each
    assert not (tmp_path / "data" / "evil.jpeg").exists()
    # what a run reads: the folder source accepts it without a val/ folder
    from pneumobench.data.sources.folder import scan_folder

    assert {r.split for r in scan_folder(folder, "binary")} == {"train", "test"}


def test_fetch_kermany_refuses_a_wrong_archive(tmp_path: Path) -> None:
    payload = _kermany_zip(tmp_path)
    served = {"ChestXRay2017.zip": payload}
    with file_server(served) as (url, _), pytest.raises(DataError, match="sha256"):
        fetch_kermany(tmp_path / "data", mirror=url, progress=False)  # the published checksum
    assert not (tmp_path / "data" / "chest_xray").exists()


def test_data_fetch_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with file_server({}) as (url, _):
        assert (
            main(["data", "fetch", "pneumoniamnist", "--root", str(tmp_path), "--mirror", url]) == 2
        )
    assert "HTTP 404" in capsys.readouterr().err
