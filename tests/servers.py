"""Real servers on 127.0.0.1 for the tests: ``mlflow server`` and fresh PostgreSQL databases.

PostgreSQL itself is started by ``.ci/postgres`` (CI runs it); its admin URL comes in
``PNEUMOBENCH_TEST_POSTGRES``. Tests that need it skip, saying so, where it is not set.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("PNEUMOBENCH_TEST_POSTGRES")
requires_postgres = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="PNEUMOBENCH_TEST_POSTGRES is not set: run `eval $(.ci/postgres start)` "
    "(PostgreSQL from Debian's packages on 127.0.0.1) to run the multi-worker tests",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(prefix: str = "pb") -> Iterator[str]:
    """A new empty database on the test PostgreSQL server; dropped afterwards."""
    import psycopg

    assert POSTGRES_URL
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def mlflow_server(backend_uri: str, workdir: Path) -> Iterator[str]:
    """``mlflow server`` on a free loopback port, serving artifacts from ``workdir``."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "mlflow-server.log").open("w")
    mlflow_exe = Path(sys.executable).parent / "mlflow"
    proc = subprocess.Popen(
        [
            str(mlflow_exe),
            "server",
            "--backend-store-uri",
            backend_uri,
            "--artifacts-destination",
            str(workdir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(
                    "mlflow server did not start:\n"
                    + (workdir / "mlflow-server.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


def start_worker(
    i: int, config: Path, storage: str, tracking: str, log_dir: Path, **env: str
) -> tuple[subprocess.Popen, Any]:
    """One ``pneumobench run`` worker process logging to ``log_dir/worker-<i>.log``."""
    log = (log_dir / f"worker-{i}.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pneumobench",
            "run",
            str(config),
            "--storage",
            storage,
            "--tracking-uri",
            tracking,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        cwd=log_dir,
    )
    return proc, log


class _FileHandler:
    """Factory of request handlers serving ``files`` (name -> bytes) with HTTP Range support.

    ``cut_after``: the first GET of each file sends only that many bytes, then drops the
    connection (an interrupted download); ``ranges``: False answers every request with the
    whole file (a server that cannot resume). ``log`` records (path, Range header) per GET."""

    def __init__(self, files: dict[str, bytes], cut_after: int | None, ranges: bool) -> None:
        self.files, self.cut_after, self.ranges = files, cut_after, ranges
        self.log: list[tuple[str, str | None]] = []
        self.cut_done: set[str] = set()

    def handler(self) -> type:
        from http.server import BaseHTTPRequestHandler

        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/").split("?")[0]
                state.log.append((name, self.headers.get("Range")))
                body = state.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                asked = self.headers.get("Range")
                if asked and state.ranges:
                    start = int(asked.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if state.cut_after is not None and name not in state.cut_done:
                    state.cut_done.add(name)
                    self.wfile.write(payload[: state.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

        return Handler


@contextlib.contextmanager
def file_server(
    files: dict[str, bytes], *, cut_after: int | None = None, ranges: bool = True
) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """(base URL, request log) of an HTTP server on 127.0.0.1 serving ``files`` by name."""
    import threading
    from http.server import ThreadingHTTPServer

    state = _FileHandler(files, cut_after, ranges)
    server = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state.log
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
