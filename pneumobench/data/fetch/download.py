"""One file over HTTP(S): resumable, checksum-verified, atomic, and quick to give up offline.

Why not ``torchvision.datasets.utils.download_url`` (what ``medmnist`` calls)? It writes straight
into the final name (a Ctrl-C leaves a half file that looks like data), keeps a file whose md5 is
wrong, cannot resume, and has no connect timeout. Here:

- bytes go to ``<name>.part``; only a complete file with the right checksum is renamed to
  ``<name>`` (``os.replace``: atomic), so the final name never holds half a download;
- an interrupted download (network error, Ctrl-C, crash) leaves the ``.part``; the next call asks
  the server for the rest (HTTP ``Range``) and starts over where the server cannot resume;
- a checksum mismatch deletes the ``.part`` and is an error: nothing wrong is kept;
- every network problem is a ``DataError`` within ``timeout`` seconds, naming the URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pneumobench.errors import DataError

MIRROR_ENV = "PNEUMOBENCH_MIRROR"
CHUNK = 1 << 20
DEFAULT_TIMEOUT = 15.0  # seconds to connect and between two reads


@dataclass(frozen=True)
class RemoteFile:
    """A published file: where it lives and how to know it arrived whole."""

    filename: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    approx_size: str = ""  # for messages, e.g. "4 MB"

    def url_from(self, mirror: str | None) -> str:
        """The file's URL on ``mirror`` (``<mirror>/<filename>``), or its published URL."""
        mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
        if mirror:
            return f"{mirror.rstrip('/')}/{self.filename}"
        return self.url


def fetch(
    remote: RemoteFile,
    dest: Path,
    *,
    mirror: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> Path:
    """``dest`` holding ``remote``'s bytes, downloaded unless a verified copy is there already.

    Two processes fetching the same file wait for each other (a lock beside it), so the second
    finds the first one's file. Raises ``DataError`` on network problems and checksum mismatches.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        if dest.is_file() and _verified(dest, remote):
            return dest
        if dest.is_file():  # a wrong file under the right name: replace it, never trust it
            dest.unlink()
        url = remote.url_from(mirror)
        part = dest.with_name(dest.name + ".part")
        _download(url, part, timeout, progress, remote.filename)
        problem = _checksum_problem(part, remote)
        if problem:
            part.unlink(missing_ok=True)
            raise DataError(
                f"{url}: the downloaded file is not {remote.filename} ({problem}); nothing was "
                "kept. A mirror may serve another version: check it, or download from "
                f"{remote.url}."
            )
        os.replace(part, dest)
    return dest


def file_md5(path: Path) -> str:
    """The md5 hex digest of a file, read in chunks."""
    return _digest(path, "md5")


def _digest(path: Path, algorithm: str) -> str:
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _checksum_problem(path: Path, remote: RemoteFile) -> str | None:
    for algorithm, expected in (("md5", remote.md5), ("sha256", remote.sha256)):
        if expected:
            got = _digest(path, algorithm)
            if got != expected.lower():
                return f"{algorithm} {got}, expected {expected}"
    return None


def _verified(path: Path, remote: RemoteFile) -> bool:
    return _checksum_problem(path, remote) is None


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    with open(dest.with_name(f".{dest.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(url: str, part: Path, timeout: float, progress: bool, label: str) -> None:
    """Append the missing bytes of ``url`` to ``part`` (all of them if the server cannot resume)."""
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "pneumobench"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the part is complete (or wrong)
            return
        raise DataError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _offline_error(url, exc, part if offset else None) from None
    with response:
        resumed = offset and getattr(response, "status", 200) == 206
        if offset and not resumed:
            offset = 0  # the server sent the whole file: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        try:
            with open(part, "ab" if resumed else "wb") as out, _bar(progress, label, total) as bar:
                bar(offset)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar(len(chunk))
        except (urllib.error.URLError, OSError) as exc:
            raise _offline_error(url, exc, part) from None
    if total is not None and part.stat().st_size < total:
        raise DataError(
            f"cannot download {url}: the connection closed after {part.stat().st_size} of "
            f"{total} bytes; the same command resumes the download ({part} is kept)"
        )


def _offline_error(url: str, exc: BaseException, part: Path | None) -> DataError:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.timeout | TimeoutError):
        reason = "timed out"
    kept = f" The partial download {part} is kept: the same command resumes it." if part else ""
    return DataError(
        f"cannot download {url}: {reason}. No internet here? Download the file on a machine "
        f"with internet, or serve it from a mirror (--mirror URL or ${MIRROR_ENV}).{kept}"
    )


@contextlib.contextmanager
def _bar(show: bool, label: str, total: int | None) -> Iterator:
    """A callable advancing a rich progress bar by n bytes (does nothing when ``show`` is off)."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(f"download {label}", total=total)
        yield lambda n: bar.advance(task, n)
