"""Where runs go: tracking URIs, the experiment, and the MLflow client for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from pneumobench.errors import TrackingError


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
    mlflow.set_tracking_uri(uri)
    experiment_id = _ensure_experiment(name, uri, artifact_location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


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
    location = artifact_location
    if location is None and is_local_store(uri):
        location = Path("mlruns").resolve().as_uri()
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
