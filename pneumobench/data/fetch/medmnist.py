"""PneumoniaMNIST files of every MedMNIST+ size, from the URLs and md5s ``medmnist`` publishes."""

from __future__ import annotations

from pathlib import Path

from pneumobench.data.fetch.download import DEFAULT_TIMEOUT, RemoteFile, fetch

FLAG = "pneumoniamnist"
SIZES = (28, 64, 128, 224)
APPROX_SIZE = {28: "4 MB", 64: "17 MB", 128: "67 MB", 224: "205 MB"}


def expected_file(size: int = 28) -> str:
    """The file name MedMNIST uses for this image size (``pneumoniamnist_224.npz``)."""
    return f"{FLAG}.npz" if size == 28 else f"{FLAG}_{size}.npz"


def size_of(filename: str) -> int | None:
    """The MedMNIST+ size a file name stands for (None: not a PneumoniaMNIST file name)."""
    for size in SIZES:
        if filename == expected_file(size):
            return size
    return None


def remote_file(size: int = 28) -> RemoteFile:
    """URL and md5 of the PneumoniaMNIST file of ``size`` px, as ``medmnist.INFO`` lists them."""
    if size not in SIZES:
        raise ValueError(f"PneumoniaMNIST comes in {', '.join(map(str, SIZES))} px, not {size}")
    from medmnist import INFO

    suffix = "" if size == 28 else f"_{size}"
    info = INFO[FLAG]
    return RemoteFile(
        expected_file(size), info[f"url{suffix}"], md5=info[f"MD5{suffix}"],
        approx_size=APPROX_SIZE[size],
    )  # fmt: skip


def fetch_pneumoniamnist(
    root: Path,
    size: int = 28,
    *,
    mirror: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Path:
    """``root/pneumoniamnist[_size].npz``, downloaded (md5 checked) unless already there."""
    remote = remote_file(size)
    return fetch(remote, root / remote.filename, mirror=mirror, timeout=timeout, progress=progress)
