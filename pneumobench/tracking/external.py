"""Writing an external evaluation: one final model on an external test set, as a run nested
under its model run (``pneumobench evaluate --test-data``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlflow

from pneumobench.tracking import schema as S
from pneumobench.tracking.writer import _finite


def log_external_run(
    experiment_id: str,
    parent_run_id: str,
    label: str,
    *,
    name: str,
    path: str,
    digest: str,
    images: int,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    predictions_csv: str,
    figures: Mapping[str, Any],
    looks: int,
) -> str:
    """One final model's evaluation on an external test set, as a run nested under its model
    run: the external set as a dataset input (context ``external:<name>``), its metrics, the
    predictions and figures; counted as one look at that set (its digest). Its run id."""
    run_tags = {
        S.ROLE: S.ROLE_EXTERNAL,
        S.LABEL: label,
        S.EXTERNAL_NAME: name,
        S.EXTERNAL_PATH: path,
        S.TEST_DIGEST: digest,
        S.TEST_EVALUATIONS: "1",  # this run's own look; the metric counts the model's so far
        "mlflow.parentRunId": parent_run_id,
        **tags,
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"{label} @ {name}", tags=run_tags, nested=True
    ) as run:
        _log_external_dataset(name, path, digest, images)
        mlflow.log_metrics(_finite(metrics))
        mlflow.log_metric(S.N_TEST_EVALUATIONS, looks, step=looks)
        mlflow.log_text(predictions_csv, S.PREDICTIONS)
        for artifact, fig in figures.items():
            mlflow.log_figure(fig, artifact)
        return run.info.run_id


def _log_external_dataset(name: str, path: str, digest: str, images: int) -> None:
    import warnings

    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.types import ColSpec, DataType, Schema

    schema = Schema([ColSpec(DataType.binary, "image"), ColSpec(DataType.long, "label")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = MetaDataset(
            LocalArtifactDatasetSource(path),
            name=f"external-{name}",
            digest=digest[: S.DATASET_DIGEST_CHARS],
            schema=schema,
        )
        mlflow.log_input(
            dataset, context=f"{S.EXTERNAL_CONTEXT}{name}", tags={"images": str(images)}
        )
