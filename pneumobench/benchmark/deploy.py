"""An ensemble row made deployable: its members' bundles in one bundle, checked against the
row's own logged test probabilities, logged as a pyfunc model and registered like any model.

Members are flattened to the single models behind them (a seed ensemble inside a top-k ensemble
gives each seed its share of the member's weight), so the bundle reproduces exactly the average
that was evaluated. A row whose members cannot be rebuilt (no bundle: logged before seed repeats
kept their weights; different image sizes or resize rules) is not registered, and the console
says why: the champion alias then goes to the best row that is.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from pneumobench.config import ExperimentConfig
from pneumobench.serving import export
from pneumobench.serving.bundle import (
    PARITY_IMAGES,
    ModelSpec,
    load_bundle,
    write_ensemble_bundle,
)
from pneumobench.serving.predictor import probabilities
from pneumobench.serving.publish import png_bytes
from pneumobench.tracking import models as tracked
from pneumobench.tracking import schema as S
from pneumobench.tracking.store import client

PARITY_TOLERANCE = 1e-4  # the bundle's probabilities against the evaluated ones, max abs


def flatten(store: Any, run_id: str, weight: float = 1.0) -> list[tuple[str, float]]:
    """(run id, weight) of every single model behind a run (itself, or its members')."""
    run = store.get_run(run_id)
    if run.data.tags.get(S.FAMILY) != S.FAMILY_ENSEMBLE:
        return [(run_id, weight)]
    members = [r for r in run.data.tags.get(S.ENSEMBLE_RUNS, "").split(",") if r]
    return [pair for m in members for pair in flatten(store, m, weight / len(members))]


def publish_ensemble(
    run_id: str,
    member_runs: list[str],
    label: str,
    thresholds: dict[str, float],
    config: ExperimentConfig,
    test_images: np.ndarray,
    test_probs: np.ndarray,
    console: Console,
) -> str | None:
    """Register the ensemble of ``run_id``; the version, or None (said on the console)."""
    store = client()
    flat = [p for m in member_runs for p in flatten(store, m, 1.0 / len(member_runs))]
    with tempfile.TemporaryDirectory(prefix="pneumobench-ensemble-") as tmp:
        folders = _download(flat, Path(tmp), label, console)
        if folders is None:
            return None
        specs = [ModelSpec.from_json((f / "spec.json").read_text()) for f, _ in folders]
        shapes = {(s.image_size, s.resize, s.in_chans, tuple(s.class_names)) for s in specs}
        if len(shapes) > 1:
            console.print(
                f"  [yellow]{label} not deployable[/]: its members decode images differently "
                f"({sorted(shapes)}); predict each member instead"
            )
            return None
        spec = _spec(specs[0], label, thresholds, config)
        bundle = write_ensemble_bundle(
            Path(tmp) / "bundle", spec, folders, test_images[:PARITY_IMAGES]
        )
        model, spec = load_bundle(bundle)
        sample = np.asarray(test_images[:PARITY_IMAGES], dtype=np.uint8)
        try:
            gap = float(np.abs(probabilities(model, sample) - test_probs[:PARITY_IMAGES]).max())
        except RuntimeError as exc:  # the members expect another input size
            gap, reason = np.inf, str(exc).splitlines()[0][:160]
        else:
            reason = ""
        if gap > PARITY_TOLERANCE:
            console.print(
                f"  [yellow]{label} not deployable[/]: its bundle's probabilities differ from "
                f"the evaluated ones by {gap:.2e} (> {PARITY_TOLERANCE:g}) {reason}"
            )
            return None
        traced = export.torchscript(model, export.to_batch(sample[:1]), Path(tmp) / "model.pt")
        tags = _version_tags(spec, label, run_id, len(flat))
        version = tracked.log_serving_in(
            run_id, bundle, traced, config.name, tags, png_bytes(sample[0])
        )
    if version:
        console.print(
            f"  {label}: registered as {tracked.registered_name(config.name)} version {version} "
            f"({len(flat)} networks in one model; parity {gap:.1e})"
        )
    return version


def _version_tags(spec: ModelSpec, label: str, run_id: str, n: int) -> dict[str, str]:
    return {
        S.LABEL: label,
        "run_id": run_id,
        S.DATASET_DIGEST: spec.dataset_digest,
        "threshold": f"{spec.threshold:.6f}",
        "operating_point": spec.decision_point,
        S.MODEL: f"ensemble of {n}",
    }


def _download(
    flat: list[tuple[str, float]], tmp: Path, label: str, console: Console
) -> list[tuple[Path, float]] | None:
    """Each member's bundle with its weight; None (said) when one has none."""
    folders = []
    for i, (member, weight) in enumerate(flat):
        try:
            folders.append((tracked.download_serving(member, tmp / f"download-{i}"), weight))
        except Exception as exc:  # TrackingError: no bundle in that run
            console.print(f"  [yellow]{label} not deployable[/]: {str(exc)[:200]}")
            return None
    return folders


def _spec(
    first: ModelSpec, label: str, thresholds: dict[str, float], config: ExperimentConfig
) -> ModelSpec:
    return ModelSpec(
        label=label,
        registry_name=S.FAMILY_ENSEMBLE,
        class_names=list(first.class_names),
        image_size=first.image_size,
        resize=first.resize,
        dropout=0.0,
        thresholds=dict(thresholds),
        in_chans=first.in_chans,
        experiment=config.name,
        dataset_digest=first.dataset_digest,
        seed=config.seed,
        targets=config.evaluation.operating_points.model_dump(),
    )
