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
import math

import mlflow

from pneumobench.tracking import schema as S

VIEW_KEY = "pneumobench-leaderboard"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
LOCAL_UI = "http://127.0.0.1:5000"
# the leaderboard's ranked metrics, first the default, and the test-look count
VIEW_METRICS = (*S.RANKED_METRICS, S.N_TEST_EVALUATIONS)


# short tag columns the runs table shows whole: value [95% interval] at 3 decimals
SHOWN = (
    ("sens_at_spec", S.RANKED_METRICS[0]),
    ("roc_auc", S.test_metric("roc_auc")),
    ("deployed_sens", S.test_metric(S.point_metric(S.DEPLOYED_POINT, "recall"))),
    ("deployed_spec", S.test_metric(S.point_metric(S.DEPLOYED_POINT, "specificity"))),
    ("ece", S.test_metric("ece")),
)
FINAL_MODELS = f"tags.`{S.ROLE}` = '{S.ROLE_MODEL}' and tags.`{S.FINAL}` = '{S.FINAL_DONE}'"


def display_tags(metrics: dict[str, float]) -> dict[str, str]:
    """``show.<column>`` -> ``0.933 [0.901, 0.958]`` for each shown metric a run logged."""
    out = {}
    for column, key in SHOWN:
        value = metrics.get(key)
        if value is None or not math.isfinite(value):
            continue
        low, high = (metrics.get(k) for k in S.ci_names(key))
        text = f"{value:.3f}"
        if low is not None and high is not None:
            text += f" [{low:.3f}, {high:.3f}]"
        out[f"{S.SHOW_PREFIX}{column}"] = text
    return out


def refresh_display_tags(experiment_id: str) -> int:
    """Write the display tags on every final model run of the experiment; how many runs."""
    client = mlflow.MlflowClient()
    runs = client.search_runs([experiment_id], filter_string=FINAL_MODELS, max_results=5000)
    for run in runs:
        for key, value in display_tags(run.data.metrics).items():
            if run.data.tags.get(key) != value:
                client.set_tag(run.info.run_id, key, value)
    return len(runs)


def view_state() -> dict:
    """The saved runs-table view: final models only, Dataset, model, the shown metrics with
    their intervals (3 decimals); best sensitivity at the specificity target first."""
    columns = ["attributes.`Dataset`", f"tags.`{S.MODEL}`"]
    columns += [f"tags.`{S.SHOW_PREFIX}{c}`" for c, _ in SHOWN]
    columns += [f"metrics.`{S.N_TEST_EVALUATIONS}`"]
    return {
        "selectedColumns": columns,
        # an order and widths make the UI apply them: each "value [low, high]" shown whole
        "columnOrder": columns,
        "columnWidths": {c: 185 for c in columns if S.SHOW_PREFIX in c},
        "orderByKey": f"metrics.`{VIEW_METRICS[0]}`",
        "orderByAsc": False,
        "searchFilter": FINAL_MODELS,
    }


def install_view(experiment_id: str) -> None:
    """Store (or refresh) the leaderboard view in the experiment."""
    mlflow.MlflowClient().set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(view_state()))


def runs_url(experiment_id: str, base: str = LOCAL_UI) -> str:
    """The URL of the experiment's runs table with the leaderboard view."""
    # the view itself holds the final-models filter: a searchFilter in the URL would make the
    # UI ignore the saved view (its columns and order) altogether
    return (
        f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
    )


def model_url(name: str, base: str = LOCAL_UI) -> str:
    """The registered model's page (versions, tags, the champion alias)."""
    return f"{base.rstrip('/')}/#/models/{name}"
