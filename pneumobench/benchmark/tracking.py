"""MLflow conventions: where runs go, how they are named and tagged, how a re-run finds its parent.

Tag names are the contract the leaderboard reads: ``pneumobench.role`` is ``model`` on the parent
run of each candidate and ``trial`` on each nested Optuna trial run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from pneumobench.errors import TrackingError

ROLE = "pneumobench.role"
LABEL = "pneumobench.label"
STUDY = "pneumobench.study"
FINAL = "pneumobench.final_evaluation"
TRIAL_STATE = "pneumobench.trial_state"
TRIAL_NUMBER = "pneumobench.trial_number"


def absolute_sqlite(uri: str) -> str:
    """``sqlite:///mlflow.db`` means ./mlflow.db of the folder the command runs in. Pinning it to
    an absolute path keeps that meaning even for libraries that cache stores by URI."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        return prefix + str(Path(uri[len(prefix) :]).expanduser().resolve())
    return uri


def is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def configure_tracking(uri: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)


def ensure_experiment(name: str, uri: str, artifact_location: str | None = None) -> str:
    """The experiment's id, creating it with artifacts in ./mlruns beside a local store."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(uri)
    try:
        experiment = client.get_experiment_by_name(name)
    except MlflowException as exc:
        raise TrackingError(f"cannot reach the MLflow tracking store {uri}: {exc}") from None
    except Exception as exc:  # connection errors come in many types
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
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # another worker created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def find_parent_run(experiment_id: str, label: str, study: str) -> Any | None:
    """The parent run of this model in this study, so that a re-run continues it."""
    import mlflow

    runs = mlflow.MlflowClient().search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{ROLE}` = 'model' and tags.`{LABEL}` = '{label}' and tags.`{STUDY}` = '{study}'"
        ),
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    return runs[0] if runs else None


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("PNEUMOBENCH_GIT_COMMIT", "unknown")


def library_versions() -> str:
    """What produced the numbers: Python and the libraries whose versions change them."""
    import platform
    from importlib.metadata import version

    names = ("torch", "torchvision", "timm", "mlflow", "optuna", "scikit-learn", "numpy")
    return ", ".join([f"python {platform.python_version()}", *(f"{n} {version(n)}" for n in names)])
