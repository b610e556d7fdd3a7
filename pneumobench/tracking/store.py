"""Where runs go: tracking URIs, the experiment, and the MLflow client for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from pneumobench.errors import TrackingError
from pneumobench.locks import initializing, sqlite_file
from pneumobench.text import redact
from pneumobench.tracking.urls import absolute_sqlite, probe, with_connect_timeout

__all__ = ["absolute_sqlite", "probe", "with_connect_timeout"]  # + below


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
