"""Soft-vote ensembles of the final models, evaluated as leaderboard rows like any model.

After every model of a run has its final evaluation, ``evaluation.ensemble.top_k`` of them are
chosen on VALIDATION (the k best validation ROC AUCs of the final models), their class
probabilities averaged (on validation and on test, from the predictions each final model logged),
the ensemble's own operating points chosen on the averaged validation probabilities, and its test
numbers computed once: the same intervals, and in the leaderboard the same paired tests against
the champion. The ensemble is logged as a model run (``ensemble-top3``, family ``ensemble``) whose
tag ``pneumobench.ensemble_members`` names its members. Nothing is retrained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Console
from sklearn.metrics import roc_auc_score

from pneumobench.benchmark.evaluation import evaluate_probabilities, metrics_to_log, validation_csv
from pneumobench.benchmark.metrics import pneumonia_score
from pneumobench.benchmark.plots import final_model_figures
from pneumobench.config import ExperimentConfig
from pneumobench.data import PreparedData
from pneumobench.tracking import reader, writer
from pneumobench.tracking import schema as S
from pneumobench.tracking.store import client

FAMILY = "ensemble"


@dataclass
class Member:
    """One final model's logged predictions, aligned with the experiment's splits."""

    label: str
    run_id: str
    val_probs: np.ndarray
    test_probs: np.ndarray
    val_auc: float


def ensemble_label(k: int) -> str:
    """The leaderboard label of the top-k ensemble."""
    return f"ensemble-top{k}"


def build_ensemble(
    config: ExperimentConfig,
    data: PreparedData,
    experiment_id: str,
    console: Console,
    force: bool = False,
) -> str | None:
    """Evaluate the top-k ensemble once (unless the same members were evaluated before and
    ``force`` is off); its run id, or None when fewer than two final models qualify."""
    k = config.evaluation.ensemble.top_k
    members, notes = candidates(experiment_id, data)
    for note in notes:
        console.print(f"  [dim]ensemble: {note}[/]")
    chosen = sorted(members, key=lambda m: -m.val_auc)[:k]
    if len(chosen) < 2:
        console.print("  [yellow]ensemble: fewer than two final models to combine[/]")
        return None
    label = ensemble_label(k)
    names = ",".join(m.label for m in chosen)
    looks = _earlier_looks(experiment_id, label, names, data.digest)
    if looks and not force:
        console.print(f"  {label} of {names}: already evaluated (--force evaluates again)")
        return None
    val_probs = np.mean([m.val_probs for m in chosen], axis=0)
    test_probs = np.mean([m.test_probs for m in chosen], axis=0)
    result = evaluate_probabilities(test_probs, val_probs, data, config.evaluation, config.seed)
    targets = config.evaluation.operating_points
    tags = {
        S.MODEL: f"{FAMILY}({names})",
        S.FAMILY: FAMILY,
        S.ENSEMBLE_MEMBERS: names,
        S.PRETRAINED_SOURCE: "members",
        S.TASK: config.task,
        S.IMAGE_SIZE: str(config.data.image_size),
        S.DATA_SOURCE: config.data.source,
        S.DATASET_DIGEST: data.digest,
        S.SEED: str(config.seed),
        S.CLASS_NAMES: ",".join(data.class_names),
        S.OP_TARGET_SENSITIVITY: str(targets.sensitivity),
        S.OP_TARGET_SPECIFICITY: str(targets.specificity),
        S.BOOTSTRAP_UNIT: "patient" if data.has_patient_ids else "image",
    }
    metrics = {**metrics_to_log(result), **{f"member_val_auc_{m.label}": m.val_auc for m in chosen}}
    run_id = writer.log_ensemble_run(
        experiment_id,
        label,
        tags,
        metrics,
        result.predictions_csv(data.test.keys, data.class_names),
        validation_csv(result, data) or "",
        final_model_figures(result, data.class_names, label),
        looks + 1,
    )
    m = result.all_metrics()
    console.print(
        f"[bold green]{label}[/] ({names}, chosen by validation ROC AUC) on test: recall "
        f"{m['at_spec_recall']:.3f} (at val specificity target), roc_auc {m['roc_auc']:.3f}"
    )
    return run_id


def candidates(experiment_id: str, data: PreparedData) -> tuple[list[Member], list[str]]:
    """The latest final model of each label on these data (ensembles excluded), with its logged
    validation and test predictions; notes on the models left out and why."""
    store = client()
    latest: dict[str, object] = {}
    for run in reader.model_runs(store, experiment_id):  # newest first
        tags = run.data.tags
        label = tags.get(S.LABEL, run.info.run_name)
        if (
            tags.get(S.FINAL) == S.FINAL_DONE
            and tags.get(S.FAMILY) != FAMILY
            and tags.get(S.DATASET_DIGEST) == data.digest
            and label not in latest
        ):
            latest[label] = run
    members, notes = [], []
    for label, run in latest.items():
        run_id = run.info.run_id  # type: ignore[attr-defined]
        try:
            val_keys, _, val_probs, _ = reader.read_predictions(store, run_id, S.VAL_PREDICTIONS)
        except Exception:  # evaluated before validation predictions were logged
            notes.append(f"{label} left out: no validation predictions logged (re-run --force)")
            continue
        test_keys, _, test_probs, _ = reader.read_predictions(store, run_id)
        if val_keys != list(data.val.keys) or test_keys != list(data.test.keys):
            notes.append(f"{label} left out: its predictions are not of these splits")
            continue
        auc = roc_auc_score(data.val.labels != 0, pneumonia_score(val_probs))
        members.append(Member(label, run_id, val_probs, test_probs, float(auc)))
    return members, notes


def _earlier_looks(experiment_id: str, label: str, members: str, digest: str) -> int:
    """How often this very ensemble (label, members, data) was evaluated on test before."""
    looks = 0
    for run in reader.model_runs(client(), experiment_id):
        tags = run.data.tags
        if (
            tags.get(S.LABEL) == label
            and tags.get(S.ENSEMBLE_MEMBERS) == members
            and tags.get(S.DATASET_DIGEST) == digest
            and tags.get(S.FINAL) == S.FINAL_DONE
        ):
            looks = max(looks, int(tags.get(S.TEST_EVALUATIONS, "1")))
    return looks
