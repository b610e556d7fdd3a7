"""The MLflow UI as the comparison view: a saved view of the leaderboard's columns and the direct
link to it.

MLflow 3's UI opens an experiment on its GenAI "Overview" page; the runs table is one click away
and shows none of the test metrics until columns are picked by hand. pneumobench stores a shared
view in the experiment (the tag ``mlflow.sharedViewState.<key>``, which the UI reads when the URL
names ``viewStateShareKey=<key>``) with the leaderboard's columns, sorted by the default ranking,
and prints the URL that opens it in the "Model training" sidebar (``workflowType``).
"""

from __future__ import annotations

import json

import mlflow

from pneumobench.tracking import schema as S

VIEW_KEY = "pneumobench-leaderboard"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
LOCAL_UI = "http://127.0.0.1:5000"
# the leaderboard's ranked metrics, first the default, and the test-look count
VIEW_METRICS = (*S.RANKED_METRICS, S.N_TEST_EVALUATIONS)


def view_state() -> dict:
    """The saved runs-table view: Dataset, model, the ranked test metrics; best recall first."""
    columns = ["attributes.`Dataset`", f"tags.`{S.MODEL}`"]
    columns += [f"metrics.`{m}`" for m in VIEW_METRICS]
    return {
        "selectedColumns": columns,
        "orderByKey": f"metrics.`{VIEW_METRICS[0]}`",
        "orderByAsc": False,
    }


def install_view(experiment_id: str) -> None:
    """Store (or refresh) the leaderboard view in the experiment."""
    mlflow.MlflowClient().set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(view_state()))


def runs_url(experiment_id: str, base: str = LOCAL_UI) -> str:
    """The URL of the experiment's runs table with the leaderboard view."""
    return (
        f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
    )


def model_url(name: str, base: str = LOCAL_UI) -> str:
    """The registered model's page (versions, tags, the champion alias)."""
    return f"{base.rstrip('/')}/#/models/{name}"
