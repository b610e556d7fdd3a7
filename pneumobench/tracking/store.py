"""Where runs go: tracking URIs, the experiment, and the MLflow client for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from pneumobench.errors import TrackingError
from pneumobench.locks import initializing, sqlite_file


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
    """Readers fail with a hint, rather than create an empty SQLite store, when none exists."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise TrackingError(
                f"no MLflow store at {path.resolve()}: run `pneumobench run experiments.yaml` in "
                "this folder first, or pass --tracking-uri"
            )


def open_experiment(name: str, uri: str, artifact_location: str | None = None) -> str:
    """Point this process's runs at ``uri`` and experiment ``name`` (created if new); its id.

    A new experiment beside a local store keeps its artifacts in ./mlruns.
    """
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
    store = mlflow.MlflowClient(uri)
    try:
        experiment = store.get_experiment_by_name(name)
    except Exception as exc:  # MlflowException, and connection errors of many types
        raise TrackingError(f"cannot reach the MLflow tracking store {uri}: {exc}") from None
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
