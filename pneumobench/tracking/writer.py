"""Writing runs: the model's parent run, its trial runs, its final evaluation and seed repeats.

Names come from :mod:`pneumobench.tracking.schema`; what is written comes in as plain values and
result objects, so the code that trains and evaluates never touches MLflow itself.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow

from pneumobench.tracking import schema as S


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """MLflow rejects NaN in some stores and plots it nowhere: undefined metrics are left out."""
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


# --- the parent run of one model ----------------------------------------------------------------


def create_candidate_run(experiment_id: str, label: str, study: str) -> str:
    """A new, undescribed parent run for ``label``: a candidate for the study's parent slot."""
    run = mlflow.MlflowClient().create_run(
        experiment_id, run_name=label, tags={S.LABEL: label, S.STUDY: study}
    )
    return run.info.run_id


def delete_run(run_id: str) -> None:
    """Delete a run (a candidate parent that lost its claim)."""
    mlflow.MlflowClient().delete_run(run_id)


@contextlib.contextmanager
def model_run(run_id: str) -> Iterator[None]:
    """Make the parent run active; it ends FINISHED, KILLED on Ctrl-C, FAILED on an error."""
    mlflow.start_run(run_id=run_id)
    try:
        yield
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")


def describe_model_run(
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    split_csv: str,
    skipped: list[str],
    leaks_csv: str | None,
    datasets: Mapping[str, int] | None = None,
    config_yaml: str | None = None,
) -> None:
    """Tags and params of the active parent run, the resolved config whole (as Lightning's
    ``SaveConfigCallback`` logs it), and the audit trail of the data it saw; ``datasets``
    (split -> images) become MLflow dataset inputs (see ``log_datasets``)."""
    mlflow.set_tags({S.ROLE: S.ROLE_MODEL, **tags})
    mlflow.log_params(dict(params))
    if config_yaml is not None:
        mlflow.log_text(config_yaml, S.CONFIG_ARTIFACT)
    if datasets:
        log_datasets(datasets, tags[S.DATA_SOURCE], tags[S.DATASET_DIGEST], tags[S.DATA_PATH])
    mlflow.log_text(split_csv, S.SPLIT)
    if skipped:
        mlflow.log_text("\n".join(skipped) + "\n", S.SKIPPED_IMAGES)
    if leaks_csv:
        mlflow.log_text(leaks_csv, S.LEAKS)


def log_datasets(splits: Mapping[str, int], source: str, digest: str, path: str) -> None:
    """Each split as an MLflow dataset input of the active run (metadata only, no pixels): the
    runs table's Dataset column then names what the run saw, e.g. ``medmnist-train (5c1000ac)``.
    The digest is the data digest of the experiment (images, labels, split, size)."""
    import warnings

    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.types import ColSpec, DataType, Schema

    schema = Schema([ColSpec(DataType.binary, "image"), ColSpec(DataType.long, "label")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ambiguous source type" for local paths
        for split, count in splits.items():
            dataset = MetaDataset(
                LocalArtifactDatasetSource(path),
                name=f"{source}-{split}",
                digest=digest[: S.DATASET_DIGEST_CHARS],
                schema=schema,
            )
            mlflow.log_input(dataset, context=split, tags={"images": str(count)})


def mark_model_failed(message: str) -> None:
    """The active model run: no trial completed, so no final evaluation."""
    mlflow.set_tags({S.FINAL: S.FINAL_FAILED, S.FAIL_REASON: message})


# --- one trial ---------------------------------------------------------------------------------


class TrialRun:
    """The nested MLflow run of one Optuna trial: per-epoch metrics, the best epoch's summary,
    and its end state derived from how the trial ended (see :meth:`__exit__`)."""

    def __init__(
        self,
        experiment_id: str,
        label: str,
        study: str,
        number: int,
        params: Mapping[str, Any],
        objective: str,
        direction: str,
        *,
        system_metrics: bool,
        system_metrics_interval: float,
    ) -> None:
        if system_metrics:
            mlflow.set_system_metrics_sampling_interval(system_metrics_interval)
        self._run = mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"{label}/trial-{number:03d}",
            nested=True,
            log_system_metrics=system_metrics,
            tags={
                S.ROLE: S.ROLE_TRIAL,
                S.LABEL: label,
                S.STUDY: study,
                S.TRIAL_NUMBER: str(number),
                S.TRIAL_STATE: "RUNNING",
            },
        )
        mlflow.log_params(dict(params))
        self.objective, self.maximize = objective, direction == "maximize"
        self.best: dict[str, float] = {}

    @property
    def run_id(self) -> str:
        """The trial run's MLflow id (kept in the Optuna trial's user attributes)."""
        return self._run.info.run_id

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """One epoch's metrics at step ``epoch``; remembers the best epoch for the summary."""
        mlflow.log_metrics(_finite(metrics), step=epoch)
        score, best = metrics[self.objective], self.best.get(self.objective)
        if not math.isnan(score) and (
            best is None or (score > best if self.maximize else score < best)
        ):
            self.best = {**metrics, S.BEST_EPOCH: float(epoch)}

    def log_checkpoint(self, path: Path) -> None:
        """The trial's checkpoint file, so another worker can evaluate it."""
        mlflow.log_artifact(str(path), S.CHECKPOINT_DIR)

    def fail_reason(self, reason: str) -> None:
        """Why the trial failed, as the run's ``pneumobench.fail_reason`` tag."""
        mlflow.set_tag(S.FAIL_REASON, reason[:5000])

    def __enter__(self) -> TrialRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        import optuna

        if kind is None:
            status, state = "FINISHED", "COMPLETE"
        elif issubclass(kind, optuna.TrialPruned):
            status, state = "FINISHED", "PRUNED"
        elif issubclass(kind, KeyboardInterrupt):
            status, state = "KILLED", "INTERRUPTED"
        else:
            status, state = "FAILED", "FAIL"
        if self.best:
            summary = {
                f"{S.BEST_PREFIX}{k}": v for k, v in self.best.items() if k.startswith("val_")
            }
            mlflow.log_metrics(_finite({**summary, S.BEST_EPOCH: self.best[S.BEST_EPOCH]}))
        mlflow.set_tag(S.TRIAL_STATE, state)
        mlflow.end_run(status)


def close_active_runs(status: str = "FAILED") -> None:
    """End every run this process still has open (the trial run, then its parent), best effort:
    after a store or disk failure nothing may be left RUNNING that can still be closed."""
    for _ in range(5):
        run = mlflow.active_run()
        if run is None:
            return
        try:
            _fail_pending_models(run.info.experiment_id, run.info.run_id)
            mlflow.end_run(status)
        except Exception:  # the store is still unusable: a resume closes the run
            return


def _fail_pending_models(experiment_id: str, run_id: str) -> None:
    """Logged models of ``run_id`` a failure left PENDING become FAILED (never mistaken for a
    finished model)."""
    from mlflow.entities import LoggedModelStatus

    client = mlflow.MlflowClient()
    for model in client.search_logged_models(
        [experiment_id], filter_string=f"source_run_id = '{run_id}'"
    ):
        if model.status == LoggedModelStatus.PENDING:
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)


def close_orphan_trial_run(run_id: str, attempts: int = 3) -> bool:
    """A trial run left RUNNING by a killed process becomes FAILED; whether this call closed it.

    Every surviving worker sweeps for orphans, so two may close the same run at once; the store
    then rejects the second writer's tags (on PostgreSQL: a duplicate key). That is not an error:
    the run is re-read and, once another worker has closed it, left alone. A store that keeps
    failing while the run is still RUNNING raises after ``attempts``.
    """
    from mlflow.entities import RunTag
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    for attempt in range(attempts):
        if client.get_run(run_id).info.status != "RUNNING":
            return False
        try:
            client.log_batch(
                run_id,
                tags=[
                    RunTag(S.TRIAL_STATE, "FAIL"),
                    RunTag(S.FAIL_REASON, "the process running it was killed"),
                ],
            )
            client.set_terminated(run_id, "FAILED")
            return True
        except MlflowException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))  # another worker is closing it: look again
    return False


# --- the final evaluation -----------------------------------------------------------------------


def log_final_evaluation(
    *,
    best_params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    predictions_csv: str,
    figures: Mapping[str, Any],
    val_predictions_csv: str | None = None,
) -> None:
    """Everything the one look at the test set produced, on the active parent run (and the
    validation predictions its thresholds came from: ensembles are built on them)."""
    named = {f"{S.BEST_PREFIX}{k}": v for k, v in best_params.items()}
    if named:
        try:
            mlflow.log_params(named)
        except Exception:  # re-evaluated with a new best: params are immutable, tags are not
            mlflow.set_tags(named)
    mlflow.log_metrics(_finite(metrics))
    mlflow.set_tags(dict(tags))
    mlflow.log_text(predictions_csv, S.PREDICTIONS)
    if val_predictions_csv is not None:
        mlflow.log_text(val_predictions_csv, S.VAL_PREDICTIONS)
    for name, fig in figures.items():
        mlflow.log_figure(fig, name)


def log_seed_repeat(
    experiment_id: str,
    label: str,
    seed: int,
    best_trial: int,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    predictions_csv: str,
    val_predictions_csv: str | None = None,
    test_digest: str = "",
) -> str:
    """One retrained seed of ``best_trial``'s hyperparameters as a nested run
    ``<label>/seed-<s>`` of the active parent run, with its test predictions and the validation
    predictions its thresholds came from (seed ensembles are built on both; logged once it is
    evaluated: an interrupted repeat leaves no run behind); its run id."""
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"{label}/seed-{seed}",
        nested=True,
        tags={
            S.ROLE: S.ROLE_REPEAT,
            S.LABEL: label,
            S.SEED: str(seed),
            S.BEST_TRIAL: str(best_trial),
            S.TEST_EVALUATIONS: "1",  # a seed repeat looks at the test set once, too
            S.TEST_DIGEST: test_digest,
        },
    ) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics(_finite(metrics))
        mlflow.log_text(predictions_csv, S.PREDICTIONS)
        if val_predictions_csv is not None:
            mlflow.log_text(val_predictions_csv, S.VAL_PREDICTIONS)
        return run.info.run_id


def set_tag(name: str, value: str) -> None:
    """A tag on the active run."""
    mlflow.set_tag(name, value)


def log_metrics(metrics: Mapping[str, float]) -> None:
    """Metrics of the active run (non-finite values left out)."""
    mlflow.log_metrics(_finite(metrics))


def mark_final_done(final_trials: int, best_trial: int) -> None:
    """The active model run's final evaluation is logged, after ``final_trials`` trials."""
    mlflow.set_tags(
        {S.FINAL: S.FINAL_DONE, S.FINAL_TRIALS: str(final_trials), S.BEST_TRIAL: str(best_trial)}
    )


def count_test_evaluation() -> int:
    """One more look at the active model run's test set, counted before it happens (a look that
    is interrupted still counts); the new count."""
    run = mlflow.active_run()
    assert run is not None
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    count = int(tags.get(S.TEST_EVALUATIONS, "0")) + 1
    mlflow.set_tag(S.TEST_EVALUATIONS, str(count))
    mlflow.log_metric(S.N_TEST_EVALUATIONS, count, step=count)
    return count


def active_run_id() -> str | None:
    """The id of the active run, if any."""
    run = mlflow.active_run()
    return run.info.run_id if run else None


def download_artifact(run_id: str, artifact_path: str) -> Path:
    """A run's artifact in a fresh temporary folder."""
    return Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=artifact_path,
            dst_path=tempfile.mkdtemp(prefix="pneumobench-"),
        )
    )


# --- the experiment's report --------------------------------------------------------------------


def attach_report(uri: str, experiment: str, paths: list[Path], models: list[str]) -> str:
    """Attach a report to the experiment's summary run (made once, reused); its run id."""
    store = mlflow.MlflowClient(uri)
    exp = store.get_experiment_by_name(experiment)
    runs = store.search_runs(
        [exp.experiment_id], filter_string=f"tags.`{S.ROLE}` = '{S.ROLE_SUMMARY}'", max_results=1
    )
    if runs:
        run_id = runs[0].info.run_id
    else:
        run_id = store.create_run(
            exp.experiment_id, run_name="summary", tags={S.ROLE: S.ROLE_SUMMARY}
        ).info.run_id
        store.set_terminated(run_id, "FINISHED")
    for path in paths:
        sub = (
            S.REPORT_DIR
            if path.suffix in (".html", ".md")
            else f"{S.REPORT_DIR}/{path.parent.name}"
        )
        store.log_artifact(run_id, str(path), sub)
    store.set_tag(run_id, S.MODELS, ", ".join(models))
    return run_id


def log_ensemble_run(
    experiment_id: str,
    label: str,
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    predictions_csv: str,
    val_predictions_csv: str,
    figures: Mapping[str, Any],
    test_evaluations: int,
) -> str:
    """An ensemble as a model run of its own (a leaderboard row): its tags, test metrics,
    predictions and figures; its run id."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=label, tags={S.ROLE: S.ROLE_MODEL}):
        # the tag counts this run's own looks (one); the metric the ensemble's looks so far
        mlflow.set_tags({S.LABEL: label, **tags, S.TEST_EVALUATIONS: "1"})
        mlflow.log_metrics(_finite(metrics))
        mlflow.log_metric(S.N_TEST_EVALUATIONS, test_evaluations, step=test_evaluations)
        mlflow.log_text(predictions_csv, S.PREDICTIONS)
        mlflow.log_text(val_predictions_csv, S.VAL_PREDICTIONS)
        for name, fig in figures.items():
            mlflow.log_figure(fig, name)
        mlflow.set_tag(S.FINAL, S.FINAL_DONE)
        run = mlflow.active_run()
        assert run is not None
        return run.info.run_id


def log_saliency(panel: Mapping[str, Any], figure: Any) -> None:
    """The final model's Grad-CAM panel (``saliency/panel.npz``) and its overlays figure."""
    _log_npz(panel, S.SALIENCY_PANEL)
    mlflow.log_figure(figure, S.SALIENCY_FIGURE)
    import matplotlib.pyplot as plt

    plt.close(figure)


def log_failures(panel: Mapping[str, Any]) -> None:
    """The final model's most confident errors with their Grad-CAM maps (``failures.npz``)."""
    _log_npz(panel, S.FAILURE_PANEL)


def _log_npz(arrays: Mapping[str, Any], artifact: str) -> None:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        path.write_bytes(buffer.getvalue())
        mlflow.log_artifact(str(path), str(Path(artifact).parent))
