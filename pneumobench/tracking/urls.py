"""Tracking and storage URLs without mlflow: absolute SQLite paths, connect timeouts, and one
bounded look at a database or server before anything else, so that a wrong URL fails in
seconds, before the heavy imports of a run."""

from __future__ import annotations

import time
from pathlib import Path

from pneumobench.errors import TrackingError
from pneumobench.text import redact


def absolute_sqlite(uri: str) -> str:
    """``sqlite:///mlflow.db`` means ./mlflow.db of the folder the command runs in. Pinning it to
    an absolute path keeps that meaning even for libraries that cache stores by URI."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        return prefix + str(Path(uri[len(prefix) :]).expanduser().resolve())
    return uri


def with_connect_timeout(uri: str, seconds: int = 10) -> str:
    """A database URI that gives up connecting after ``seconds`` (a server that accepts and
    never answers would otherwise hang the run)."""
    if uri.startswith(("postgresql", "mysql")) and "connect_timeout" not in uri:
        return f"{uri}{'&' if '?' in uri else '?'}connect_timeout={seconds}"
    return uri


PROBE_SECONDS = 10  # how long a tracking database or server may take to answer at all


def probe(uri: str, seconds: int = PROBE_SECONDS) -> None:
    """One bounded attempt to reach a tracking database (PostgreSQL, MySQL) or server (http):
    an unreachable one is a TrackingError within ``seconds``, not minutes of MLflow's retries."""
    started = time.monotonic()
    try:
        if uri.startswith(("postgresql", "mysql")):
            _probe_database(with_connect_timeout(uri, seconds))
        elif uri.startswith(("http://", "https://")):
            _probe_server(uri, seconds)
        else:
            return
    except Exception as exc:
        waited = time.monotonic() - started
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise TrackingError(
            f"cannot reach the MLflow tracking store {redact(uri)} (gave up after {waited:.0f} s: "
            f"{redact(reason)}). Is the server running and the URL right? Pass another "
            "--tracking-uri, or set tracking.uri (e.g. sqlite:///mlflow.db)"
        ) from None


def _probe_database(uri: str) -> None:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(uri, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    finally:
        engine.dispose()


def _probe_server(uri: str, seconds: int) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=seconds):
            return
    except urllib.error.HTTPError:  # it answered (a proxy without /health, say): reachable
        return
