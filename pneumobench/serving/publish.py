"""After a final evaluation: the model as a bundle, a pyfunc model and a registered version."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pneumobench.evaluate.failures import confident_errors
from pneumobench.evaluate.saliency import grad_cam, panel_indices
from pneumobench.serving import export
from pneumobench.serving.bundle import PARITY_IMAGES, ModelSpec, decide, write_bundle
from pneumobench.tracking import models as tracked
from pneumobench.tracking import schema as S

# test metrics copied onto the registered version (what the Models page shows)
VERSION_METRICS = S.RANKED_METRICS


def saliency_panel(
    model: torch.nn.Module,
    spec: ModelSpec,
    images: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    keys: list[str],
    seed: int,
) -> dict[str, np.ndarray]:
    """Grad-CAM maps of the experiment's saliency panel (the same test images for every model),
    explaining each image's decision at the model's operating point; arrays for ``panel.npz``."""
    rows = panel_indices(labels, seed)
    decisions = decide(probs[rows], spec)
    cams = grad_cam(model, images[rows], decisions)
    return {
        "rows": rows,
        "keys": np.array([keys[i] for i in rows]),
        "images": images[rows].astype(np.uint8),
        "labels": labels[rows].astype(np.int64),
        "probs": probs[rows].astype(np.float32),
        "decisions": decisions.astype(np.int64),
        "cams": cams.astype(np.float16),
    }


def failure_panel(
    model: torch.nn.Module,
    spec: ModelSpec,
    images: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    keys: list[str],
    per_kind: int,
) -> dict[str, np.ndarray] | None:
    """Grad-CAM maps of the model's most confident errors at its deployed threshold
    (``evaluate.failures``); arrays for ``failures.npz``, None when it made none."""
    cases = confident_errors(labels, probs, spec.threshold, per_kind)
    if not cases:
        return None
    rows = np.array([i for _, i in cases], dtype=np.int64)
    decisions = decide(probs[rows], spec)
    return {
        "rows": rows,
        "kinds": np.array([kind for kind, _ in cases]),
        "keys": np.array([keys[i] for i in rows]),
        "images": images[rows].astype(np.uint8),
        "labels": labels[rows].astype(np.int64),
        "probs": probs[rows].astype(np.float32),
        "decisions": decisions.astype(np.int64),
        "cams": grad_cam(model, images[rows], decisions).astype(np.float16),
        "threshold": np.array(spec.threshold),
    }


def publish(
    model: torch.nn.Module,
    spec: ModelSpec,
    test_images: np.ndarray,
    metrics: dict[str, float],
    run_id: str,
) -> str | None:
    """Log the serving bundle and the pyfunc model to the active run and register it; the
    registered version (None where the store has no Model Registry)."""
    model = model.cpu().eval()
    sample = np.asarray(test_images[:PARITY_IMAGES], dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="pneumobench-serving-") as tmp:
        bundle = write_bundle(Path(tmp) / "bundle", model, spec, sample)
        served = model
        if spec.tta == "hflip":  # the served network averages with the mirror, as evaluated
            from pneumobench.serving.ensemble import MirrorAveraged

            served = MirrorAveraged(model).eval()
        traced = export.torchscript(served, export.to_batch(sample[:1]), Path(tmp) / "model.pt")
        tags = {
            S.LABEL: spec.label,
            "run_id": run_id,
            S.DATASET_DIGEST: spec.dataset_digest,
            "threshold": f"{spec.threshold:.6f}",
            "operating_point": spec.decision_point,
            S.MODEL: spec.registry_name,
        }
        tags.update({k: f"{metrics[k]:.4f}" for k in VERSION_METRICS if k in metrics})
        return tracked.log_serving(bundle, traced, spec.experiment, tags, png_bytes(sample[0]))


def log_repeat_bundle(
    run_id: str, model: torch.nn.Module, spec: ModelSpec, test_images: np.ndarray
) -> None:
    """A seed repeat's serving bundle in its own run (not registered: an ensemble of seeds
    holding it can be)."""
    with tempfile.TemporaryDirectory(prefix="pneumobench-repeat-") as tmp:
        bundle = write_bundle(Path(tmp) / "bundle", model.cpu().eval(), spec, test_images)
        tracked.log_bundle(run_id, bundle)


def png_bytes(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image, mode="L").save(out, format="PNG")
    return out.getvalue()
