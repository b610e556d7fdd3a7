"""The one MLflow parent run of a model's study, shared by every worker, and what it says.

Each worker that finds no parent creates a candidate run and claims the study's parent slot with
it; the first claim wins, the others delete their candidates and use the winner's (see
coordination.py). The winner describes the run: what produced its numbers, and the data split.
"""

from __future__ import annotations

from typing import Any

import torch

from pneumobench import __version__
from pneumobench.config import ExperimentConfig
from pneumobench.config.plan import ModelPlan
from pneumobench.data import PreparedData
from pneumobench.errors import TrackingError
from pneumobench.registry import get_architecture
from pneumobench.search.coordination import Claims
from pneumobench.tracking import reader, writer
from pneumobench.tracking import schema as S
from pneumobench.tracking.provenance import git_commit, library_versions, redacted_url
from pneumobench.train.device import effective_precision, hardware
from pneumobench.train.starting_point import ModelFacts


def agree_on_parent(
    claims: Claims, experiment_id: str, plan: ModelPlan, tracking_uri: str
) -> tuple[str, bool]:
    """The parent run's id, and whether this worker must describe it."""
    key = f"parent:{plan.study_name}"
    run_id = claims.get(key)
    if run_id is None:
        legacy = reader.find_parent_run(experiment_id, plan.label, plan.study_name)
        if legacy is not None:  # a store written before parents were claimed
            return claims.claim(key, legacy.info.run_id), False
        candidate = writer.create_candidate_run(experiment_id, plan.label, plan.study_name)
        run_id = claims.claim(key, candidate)
        if run_id != candidate:
            writer.delete_run(candidate)
            return run_id, False
        return run_id, True
    try:
        run = reader.get_run(run_id)
    except Exception as exc:
        raise TrackingError(
            f"{plan.label}: the parent run {run_id} recorded for study '{plan.study_name}' is "
            f"not in the tracking store {tracking_uri} ({exc}). The Optuna storage and the "
            "MLflow store belong together: use the pair of the first run, or a new experiment "
            "name."
        ) from None
    if run.info.lifecycle_stage == "deleted":
        raise TrackingError(
            f"{plan.label}: the parent run {run_id} of study '{plan.study_name}' was deleted "
            "in MLflow: restore it (`mlflow runs restore`) or use a new experiment name"
        )
    return run_id, run.data.tags.get(S.ROLE) != S.ROLE_MODEL  # its creator died before describing


def check_same_data(plan: ModelPlan, parent: Any, data: PreparedData) -> None:
    """A worker whose data differ from the study's must not add trials to it."""
    digest = parent.data.tags.get(S.DATASET_DIGEST)
    if digest is not None and digest != data.digest:
        raise TrackingError(
            f"{plan.label}: this worker's data (digest {data.digest}) differ from the "
            f"data the study '{plan.study_name}' was run on (digest {digest}, run "
            f"{parent.info.run_id}): point every worker at the same data and data settings, or "
            "use a new experiment name for new data"
        )


def describe_parent(
    plan: ModelPlan,
    facts: ModelFacts,
    data: PreparedData,
    config: ExperimentConfig,
    device: torch.device,
) -> None:
    """Tags (what produced the numbers), params (protocol, search, data counts), data split."""
    tags = {
        S.LABEL: plan.label,
        S.STUDY: plan.study_name,
        S.MODEL: plan.registry_name,
        S.FAMILY: facts.family,
        S.MODEL_ORIGIN: get_architecture(plan.registry_name).origin,
        S.NUM_PARAMS: str(facts.num_params),
        S.PRETRAINED_SOURCE: facts.pretrained_source,
        **S.data_tags(
            config.task,
            plan.image_size,
            config.data.source,
            (data.digest, data.test_digest),
            data.class_names,
            data.validation_note,
        ),
        S.DATA_PATH: str(data.root),
        S.SEED: str(plan.seed),
        S.DEVICE: str(device),
        **S.hardware_tags(hardware(device)),
        S.PRECISION: effective_precision(device, plan.protocol.precision),
        S.GIT_COMMIT: git_commit(),
        S.VERSION: __version__,
        S.VERSIONS: library_versions(),
        S.OPTUNA_STORAGE: redacted_url(config.search.storage),
    }
    leaks_csv = data.leaks.to_csv() if data.leaks.found else None
    datasets = {name: len(split) for name, split in data.splits().items()}
    writer.describe_model_run(
        tags,
        _params(plan, data, config),
        data.split_csv(),
        data.skipped,
        leaks_csv,
        datasets,
        config.to_yaml(),
    )


def _params(plan: ModelPlan, data: PreparedData, config: ExperimentConfig) -> dict[str, Any]:
    """The parent run's params: the protocol, the search, the data counts and the leak check."""
    params: dict[str, Any] = {f"protocol.{k}": v for k, v in plan.protocol.model_dump().items()}
    params.update(
        {
            "search.n_trials": plan.n_trials,
            S.PARAM_OBJECTIVE: plan.objective,
            "search.sampler": config.search.sampler,
            "search.pruner": config.search.pruner,
            "data.image_size": plan.image_size,
            "data.val_fraction": config.data.val_fraction,
            "data.limit_per_class": config.data.limit_per_class,
            "seed": plan.seed,
            "search.space": "; ".join(f"{k}={v.model_dump()}" for k, v in plan.space.items()),
            S.PARAM_SKIPPED_IMAGES: len(data.skipped),
            S.PARAM_PATIENTS_CHECKED: data.leaks.patients_checked,
            S.PARAM_LEAK_SHARED_PATIENTS: len(data.leaks.shared_patients),
            S.PARAM_LEAK_NEAR_DUPLICATES: len(data.leaks.near_duplicates),
            S.PARAM_LEAK_IDENTICAL_GROUPS: len(data.leaks.identical),
            "evaluation.tta": config.evaluation.tta,
            "evaluation.seeds": ",".join(map(str, plan.seeds)) or "none",
            "evaluation.ensemble.top_k": config.evaluation.ensemble.top_k,
        }
    )
    params.update({S.data_param(k): v for k, v in data.summary().items()})
    return params
