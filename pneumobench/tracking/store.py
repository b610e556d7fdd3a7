"""Where runs go: tracking URIs, the experiment, and the MLflow client for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from pneumobench.errors import TrackingError
from pneumobench.locks import initializing, sqlite_file
from pneumobench.text import redact


def absolute_sqlite(uri: str) -> str:
    """``sqlite:///mlflow.db`` means ./mlflow.db of the folder the command runs in. Pinning it to
    an absolute path keeps that meaning even for libraries that cache stores by URI."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        return prefix + str(Path(uri[len(prefix) :]).expanduser().resolve())
    return uri


def is_local_store(uri: str) -> bool:
    """A store on this machine's disk (SQLite or a file store), not a tracking server."""
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def client(uri: str | None = None) -> Any:
    """An ``MlflowClient`` for ``uri`` (default: the URI set by :func:`open_experiment`)."""
    return mlflow.MlflowClient(uri)


def require_local_store(uri: str) -> None:
    """Readers fail with a hint, rather than create an empty SQLite store, when none exists;
    a database or tracking server that does not answer fails in seconds (``probe``)."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise TrackingError(
                f"no MLflow store at {path.resolve()}: run `pneumobench run experiments.yaml` in "
                "this folder first, or pass --tracking-uri"
            )
    probe(uri)


PROBE_SECONDS = 10  # how long a tracking database or server may take to answer at all


def probe(uri: str, seconds: int = PROBE_SECONDS) -> None:
    """One bounded attempt to reach a tracking database (PostgreSQL, MySQL) or server (http):
    an unreachable one is a TrackingError within ``seconds``, not minutes of MLflow's retries."""
    import time

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


def open_experiment(name: str, uri: str, artifact_location: str | None = None) -> str:
    """Point this process's runs at ``uri`` and experiment ``name`` (created if new); its id.

    A new experiment beside a local store keeps its artifacts in ./mlruns.
    """
    probe(uri)
    uri = with_connect_timeout(uri)
    mlflow.set_tracking_uri(uri)
    with initializing(uri):  # two runs in a fresh folder would race on the tables' creation
        experiment_id = _ensure_experiment(name, uri, artifact_location)
    mlflow.set_experiment(experiment_id=experiment_id)
    from pneumobench.tracking.ui import install_view

    install_view(experiment_id)
    return experiment_id


def with_connect_timeout(uri: str, seconds: int = 10) -> str:
    """A database URI that gives up connecting after ``seconds`` (a server that accepts and
    never answers would otherwise hang the run)."""
    if uri.startswith(("postgresql", "mysql")) and "connect_timeout" not in uri:
        return f"{uri}{'&' if '?' in uri else '?'}connect_timeout={seconds}"
    return uri


def artifact_root_beside(uri: str) -> str | None:
    """``mlruns/`` in the folder of a SQLite store (None: the store chooses, e.g. a server)."""
    path = sqlite_file(uri)
    return (path.parent.resolve() / "mlruns").as_uri() if path is not None else None


def _ensure_experiment(name: str, uri: str, artifact_location: str | None) -> str:
    try:
        store = mlflow.MlflowClient(uri)
        experiment = store.get_experiment_by_name(name)
    except Exception as exc:  # MlflowException, and connection errors of many types
        raise TrackingError(
            f"cannot reach the MLflow tracking store {redact(uri)}: {redact(str(exc))}"
        ) from None
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow experiment '{name}' is deleted: restore it (`mlflow experiments restore`) "
                "or choose another `name`"
            )
        return experiment.experiment_id
    location = artifact_location or artifact_root_beside(uri)
    try:
        return store.create_experiment(name, artifact_location=location)
    except MlflowException:  # another worker created it first
        experiment = store.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def find_experiment(store: Any, name: str, uri: str) -> Any:
    """The experiment called ``name``, or an error listing the ones that exist."""
    experiment = store.get_experiment_by_name(name)
    if experiment is None:
        names = [e.name for e in store.search_experiments() if e.name != "Default"]
        raise TrackingError(
            f"no MLflow experiment named '{name}' in {uri}; "
            f"found: {', '.join(names) or 'none'} (use --experiment)"
        )
    return experiment


# MLflow's SQLite sessions wait this long for a lock before a write fails (its busy_timeout).
MLFLOW_SQLITE_BUSY_SECONDS = 20


def storage_failure(exc: BaseException, uri: str) -> TrackingError | None:
    """What a failure of the tracking store or the disk means for a user, as one TrackingError
    (None when ``exc`` is something else): a SQLite store locked by another process past
    MLflow's bounded wait, or a full disk (naming the file that could not be written)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    store = sqlite_file(uri)
    where = str(store) if store is not None else redact(uri)
    full = next((e for e in chain if isinstance(e, OSError) and e.errno == 28), None)
    if full is not None or "database or disk is full" in text or "No space left" in text:
        path = getattr(full, "filename", None) or where
        return TrackingError(
            f"no space left on the device holding {path}: free some space (the decode cache "
            "in data.cache_dir and old runs' artifacts are the big ones) and run the same "
            "command again. Finished trials are kept; runs cut short are closed as FAILED and "
            "nothing half-written counts as done"
        )
    if "database is locked" in text:
        return TrackingError(
            f"the MLflow store {where} is locked by another process: MLflow waited "
            f"{MLFLOW_SQLITE_BUSY_SECONDS} s for each write and gave up. Stop the other process "
            "(a second `pneumobench run`, an open `sqlite3` shell, a backup tool), then run the "
            "same command again: finished trials are kept and runs cut short are closed"
        )
    return None
