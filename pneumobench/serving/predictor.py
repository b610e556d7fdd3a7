"""Predicting new images with a final model: files and folders in, one row per image out.

Images are decoded exactly as in training (``pixels.decode_image`` with the model's image size
and resize mode), predicted in batches, and decided at the model's validation-chosen operating
point. A file that cannot be read becomes a row with its reason; the others are predicted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pneumobench.data.pixels import decode_image
from pneumobench.serving.bundle import ModelSpec, decide

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".dcm", ".dicom", ".bmp", ".tif", ".tiff"}


@dataclass
class Prediction:
    """One image's result: class probabilities and the decision, or why it has none."""

    path: str
    probs: list[float] | None = None
    prediction: str = ""
    error: str = ""
    saliency: str = ""  # the Grad-CAM overlay written for it (predict --explain)


def image_files(paths: Iterable[Path]) -> tuple[list[Path], list[Prediction]]:
    """Files to predict (folders searched recursively for image files; litter skipped), and a
    row with the reason for each path that does not exist."""
    from pneumobench.data.sources.folder import is_litter

    files: list[Path] = []
    missing: list[Prediction] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not is_litter(p) and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.is_file():
            files.append(path)
        else:
            missing.append(Prediction(str(path), error="no such file or folder"))
    return files, missing


def predict_files(
    model: torch.nn.Module,
    spec: ModelSpec,
    files: list[Path],
    *,
    batch_size: int = 64,
    advance: Callable[[int], None] = lambda n: None,
    explain: Path | None = None,
) -> list[Prediction]:
    """One Prediction per file, in order. ``explain``: a folder for a Grad-CAM overlay per
    image (explaining the decision), named ``<n>-<file name>.png``."""
    model = model.cpu().eval()
    out: list[Prediction] = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        rows, images = [], []
        for path in chunk:
            row = Prediction(str(path))
            try:
                images.append(decode_image(path, spec.image_size, spec.resize))
            except Exception as exc:  # PIL and pydicom raise many types for broken files
                row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            rows.append(row)
        if images:
            probs = probabilities(model, np.stack(images))
            decisions = decide(probs, spec)
            readable = [r for r in rows if not r.error]
            for row, p, d in zip(readable, probs, decisions, strict=True):
                row.probs = [float(v) for v in p]
                row.prediction = spec.class_names[int(d)]
            if explain is not None:
                _explain(
                    model, np.stack(images), decisions, readable, explain, len(out), spec.threshold
                )
        out += rows
        advance(len(chunk))
    return out


def _explain(
    model: torch.nn.Module,
    images: np.ndarray,
    decisions: np.ndarray,
    rows: list[Prediction],
    folder: Path,
    offset: int,
    threshold: float,
) -> None:
    from pneumobench.errors import ModelError
    from pneumobench.evaluate.saliency import NotExplainable, grad_cam

    try:
        cams = grad_cam(model, images, decisions)
    except NotExplainable as exc:
        raise ModelError(f"--explain: this model cannot be explained: {exc}") from None
    folder.mkdir(parents=True, exist_ok=True)
    for k, (row, image, cam) in enumerate(zip(rows, images, cams, strict=True)):
        target = folder / f"{offset + k:05d}-{Path(row.path).stem}.png"
        target.write_bytes(explained_png(image, cam, row, threshold))
        row.saliency = str(target)


def explained_png(image: np.ndarray, cam: np.ndarray, row: Prediction, threshold: float) -> bytes:
    """The image beside its Grad-CAM overlay, titled with P(pneumonia), the decision and the
    threshold, with a colour bar saying what the colours mean."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pneumobench.evaluate.overlay import overlay

    score = 1.0 - float((row.probs or [float("nan")])[0])
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.8))
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title(Path(row.path).name[:40], fontsize=8)
    axes[1].imshow(overlay(image, cam.astype(np.float32)))
    axes[1].set_title(f"Grad-CAM of '{row.prediction}'", fontsize=8)
    for ax in axes:
        ax.axis("off")
    mappable = plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(0, 1))
    fig.colorbar(mappable, ax=axes[1], fraction=0.046, label="evidence for the decision")
    fig.suptitle(
        f"P(pneumonia) {score:.3f} -> {row.prediction} (threshold {threshold:.3f})", fontsize=10
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def probabilities(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """(N, classes) softmax probabilities of (N, S, S) uint8 images."""
    batch = torch.from_numpy(images.astype(np.float32)[:, None] / 255.0)
    with torch.inference_mode():
        return torch.softmax(model(batch).float(), 1).numpy().astype(np.float64)


def to_csv(rows: list[Prediction], spec: ModelSpec) -> str:
    """``path, prediction, pneumonia_score, threshold, operating_point, p_<class>..., error``
    (and ``saliency`` when overlays were written)."""
    explained = any(r.saliency for r in rows)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["path", "prediction", "pneumonia_score", "threshold", "operating_point"]
        + [f"p_{c}" for c in spec.class_names]
        + ["error"]
        + (["saliency"] if explained else [])
    )
    for row in rows:
        probs = row.probs or []
        score = f"{1.0 - probs[0]:.6f}" if probs else ""
        writer.writerow(
            [row.path, row.prediction, score, f"{spec.threshold:.6f}", spec.decision_point]
            + ([f"{v:.6f}" for v in probs] if probs else [""] * len(spec.class_names))
            + [row.error]
            + ([row.saliency] if explained else [])
        )
    return out.getvalue()


def to_json(rows: list[Prediction], spec: ModelSpec, model: dict[str, str]) -> str:
    """The rows and what produced them (model, run, threshold, operating point)."""
    payload = {
        "model": model,
        "operating_point": spec.decision_point,
        "threshold": spec.threshold,
        "class_names": spec.class_names,  # not an MLflow name: the JSON output's key
        "predictions": [
            {
                "path": r.path,
                "prediction": r.prediction or None,
                "pneumonia_score": (1.0 - r.probs[0]) if r.probs else None,
                "probabilities": dict(zip(spec.class_names, r.probs, strict=True))
                if r.probs
                else None,
                "error": r.error or None,
                "saliency": r.saliency or None,
            }
            for r in rows
        ],
    }
    return json.dumps(payload, indent=2)
