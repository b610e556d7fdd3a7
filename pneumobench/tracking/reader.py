"""Reading runs back: a model's parent run, the final models of an experiment, their predictions.

The leaderboard and the report see MLflow only through these functions and the names in
:mod:`pneumobench.tracking.schema`.
"""

from __future__ import annotations

import csv
import tempfile
from typing import Any

import numpy as np

from pneumobench.tracking import schema as S
from pneumobench.tracking.store import client


def find_parent_run(experiment_id: str, label: str, study: str) -> Any | None:
    """The parent run of this model in this study (written before parents were claimed)."""
    runs = client().search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{S.ROLE}` = '{S.ROLE_MODEL}' and tags.`{S.LABEL}` = '{label}' "
            f"and tags.`{S.STUDY}` = '{study}'"
        ),
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    return runs[0] if runs else None


def get_run(run_id: str, uri: str | None = None) -> Any:
    """A run by id."""
    return client(uri).get_run(run_id)


def model_runs(store: Any, experiment_id: str) -> list[Any]:
    """Every model (parent) run of an experiment, newest first."""
    return store.search_runs(
        [experiment_id],
        filter_string=f"tags.`{S.ROLE}` = '{S.ROLE_MODEL}'",
        order_by=["attributes.start_time DESC"],
    )


def test_set_looks(store: Any, test_digest: str) -> tuple[int, int]:
    """How often the test set of this content has been evaluated in this store, across every
    experiment (each final evaluation of a model, a seed repeat or an ensemble is one look; a
    model evaluated again with --force counts each time), and in how many experiments."""
    if not test_digest:
        return 0, 0
    experiments = [e.experiment_id for e in store.search_experiments()]
    runs = store.search_runs(
        experiments,
        filter_string=f"tags.`{S.TEST_DIGEST}` = '{test_digest}'",
        max_results=50000,
    )
    looked = [r for r in runs if r.data.tags.get(S.TEST_EVALUATIONS, "").isdigit()]
    looks = sum(int(r.data.tags[S.TEST_EVALUATIONS]) for r in looked)
    return looks, len({r.info.experiment_id for r in looked})


def external_runs(store: Any, experiment_id: str) -> dict[str, dict[str, Any]]:
    """The latest external evaluation of each final model run on each external set:
    ``{set name: {model run id: run}}``, sets in the order they were first evaluated (by run,
    not label: an ensemble evaluated again with other members is another row)."""
    runs = store.search_runs(
        [experiment_id],
        filter_string=f"tags.`{S.ROLE}` = '{S.ROLE_EXTERNAL}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
    )
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        tags = run.data.tags
        parent = tags.get("mlflow.parentRunId", "")
        out.setdefault(tags.get(S.EXTERNAL_NAME, "external"), {})[parent] = run
    return out


def external_looks(store: Any, experiment_id: str, model_run: str, digest: str) -> int:
    """How often the final model of ``model_run`` was evaluated on the external set of this
    content before."""
    runs = store.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{S.ROLE}` = '{S.ROLE_EXTERNAL}' and tags.`mlflow.parentRunId` = "
            f"'{model_run}' and tags.`{S.TEST_DIGEST}` = '{digest}'"
        ),
    )
    return len(runs)


def trial_run(store: Any, experiment_id: str, label: str, number: str) -> Any | None:
    """The MLflow run of trial ``number`` of model ``label``."""
    runs = store.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{S.ROLE}` = '{S.ROLE_TRIAL}' and tags.`{S.LABEL}` = '{label}' "
            f"and tags.`{S.TRIAL_NUMBER}` = '{number}'"
        ),
        max_results=1,
    )
    return runs[0] if runs else None


def metric_history(store: Any, run_id: str, name: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of a metric."""
    return [(m.step, m.value) for m in store.get_metric_history(run_id, name)]


def read_predictions(
    store: Any, run_id: str, artifact: str = S.PREDICTIONS
) -> tuple[list[str], np.ndarray, np.ndarray, list[str] | None]:
    """(paths, y_true, class probabilities, patients or None) from a run's predictions CSV
    (the test predictions, or ``S.VAL_PREDICTIONS``)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = store.download_artifacts(run_id, artifact, tmp)
        with open(local, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            rows = list(reader)
    column = {name: i for i, name in enumerate(header)}
    prob_columns = [i for i, name in enumerate(header) if name.startswith("p_")]
    paths = [r[0] for r in rows]
    y = np.array([int(r[column["y_true"]]) for r in rows])
    probs = np.array([[float(r[i]) for i in prob_columns] for r in rows])
    patients = [r[column["patient"]] for r in rows] if "patient" in column else None
    return paths, y, probs, patients


def finished_seed_repeats(
    experiment_id: str, parent_run_id: str, best_trial: int
) -> dict[int, tuple[str, dict[str, float]]]:
    """Run id and test metrics (without the ``test_`` prefix) of each seed repeat of
    ``best_trial`` that finished under ``parent_run_id``: a resumed final evaluation does not
    train them again."""
    runs = client().search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`mlflow.parentRunId` = '{parent_run_id}' and "
            f"tags.`{S.ROLE}` = '{S.ROLE_REPEAT}' and tags.`{S.BEST_TRIAL}` = '{best_trial}' "
            "and attributes.status = 'FINISHED'"
        ),
    )
    return {
        int(run.data.tags[S.SEED]): (
            run.info.run_id,
            {
                k.removeprefix(S.TEST_PREFIX): v
                for k, v in run.data.metrics.items()
                if k.startswith(S.TEST_PREFIX)
            },
        )
        for run in runs
    }


def read_saliency_panel(
    store: Any, run_id: str, artifact: str = S.SALIENCY_PANEL
) -> dict[str, np.ndarray] | None:
    """A final model's Grad-CAM panel (``saliency/panel.npz``, or ``S.FAILURE_PANEL``), None
    when it has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = store.download_artifacts(run_id, artifact, tmp)
        except Exception:  # MlflowException / OSError: not logged
            return None
        with np.load(local, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
