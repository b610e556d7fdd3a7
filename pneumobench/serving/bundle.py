"""A final model as files that load without running anybody's code.

A bundle is a folder (logged to the final model's MLflow run under ``serving/``):

- ``spec.json``: what to rebuild and how to decide (``ModelSpec``);
- ``weights.pt``: the state dict only, read back with ``torch.load(weights_only=True)``, which
  refuses anything but tensors and plain containers;
- ``parity_images.npy``: a few real test images (uint8, as decoded), for export parity checks.

Loading rebuilds the architecture from the registry by name (plugins included, from the config)
and fills it with those weights: nothing pickled is ever unpickled, so a shared tracking server
cannot make ``predict`` or ``export`` run code.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from pneumobench.errors import ModelError, unsafe_load_reason
from pneumobench.evaluate.metrics import decide_at

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.pt"
PARITY_FILE = "parity_images.npy"
PARITY_IMAGES = 16
DEFAULT_POINT = "spec"  # the leaderboard's default ranking (recall at the specificity target)


@dataclass
class ModelSpec:
    """Everything needed to rebuild a final model and use it as it was validated."""

    label: str
    registry_name: str
    class_names: list[str]
    image_size: int
    resize: str  # squash | center_crop | pad (pixels.decode_image)
    dropout: float
    thresholds: dict[str, float]  # operating point -> threshold on P(pneumonia), from validation
    decision_point: str = DEFAULT_POINT
    in_chans: int = 1
    experiment: str = ""
    dataset_digest: str = ""
    model_origin: str = "pneumobench"  # registry entry's origin (a plugin file for own models)
    seed: int = 0
    targets: dict[str, float] = field(default_factory=dict)  # sensitivity / specificity targets
    members: list[dict] = field(default_factory=list)  # an ensemble: [{folder, weight}] (ensemble)
    tta: str = "none"  # hflip: the network averages each image with its mirror, as evaluated

    @property
    def threshold(self) -> float:
        """The threshold of the decision point (validation-chosen)."""
        return float(self.thresholds[self.decision_point])

    def to_json(self) -> str:
        """The spec as JSON (``spec.json``)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        """Read ``spec.json``; unknown keys of newer versions are ignored."""
        raw = json.loads(text)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def decide(probs: np.ndarray, spec: ModelSpec, point: str | None = None) -> np.ndarray:
    """Class index per row: pneumonia when P(pneumonia) = 1 - P(normal) reaches the operating
    point's validation-chosen threshold (then the most likely pneumonia class), else normal."""
    return decide_at(probs, spec.thresholds[point or spec.decision_point])


def write_bundle(
    folder: Path, model: torch.nn.Module, spec: ModelSpec, parity_images: np.ndarray
) -> Path:
    """Write the bundle files into ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SPEC_FILE).write_text(spec.to_json())
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, folder / WEIGHTS_FILE)
    np.save(folder / PARITY_FILE, np.ascontiguousarray(parity_images[:PARITY_IMAGES], np.uint8))
    return folder


def write_ensemble_bundle(
    folder: Path, spec: ModelSpec, members: list[tuple[Path, float]], parity_images: np.ndarray
) -> Path:
    """Copy each member's bundle into ``folder/members/<i>`` and write the ensemble's spec
    (its ``members`` filled in)."""
    folder.mkdir(parents=True, exist_ok=True)
    spec.members = []
    for i, (member, weight) in enumerate(members):
        shutil.copytree(member, folder / "members" / str(i))
        spec.members.append({"folder": f"members/{i}", "weight": weight})
    (folder / SPEC_FILE).write_text(spec.to_json())
    np.save(folder / PARITY_FILE, np.ascontiguousarray(parity_images[:PARITY_IMAGES], np.uint8))
    return folder


def load_bundle(folder: Path) -> tuple[torch.nn.Module, ModelSpec]:
    """The model (eval mode, CPU) and its spec, rebuilt from the registry + ``weights_only``."""
    from pneumobench.registry import create_model

    spec_path = folder / SPEC_FILE
    if not spec_path.is_file():
        raise ModelError(
            f"{folder}: no {SPEC_FILE}; this run has no serving bundle (logged by pneumobench "
            "since predict/export exist): evaluate the model again with `pneumobench run --force`"
        )
    spec = ModelSpec.from_json(spec_path.read_text())
    if spec.members:
        from pneumobench.serving.ensemble import load_ensemble

        return load_ensemble(folder, spec.members, load_bundle), spec
    model = create_model(
        spec.registry_name,
        len(spec.class_names),
        pretrained=False,
        dropout=spec.dropout,
        in_chans=spec.in_chans,
        image_size=spec.image_size,
    )
    try:
        state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"{folder / WEIGHTS_FILE}: not a plain state dict ({unsafe_load_reason(exc)}); "
            "pneumobench loads weights only, never pickled code"
        ) from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(
            f"{folder / WEIGHTS_FILE} does not fit {spec.registry_name} as the registry builds it "
            f"now (missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]}): was the model "
            "(or its plugin) changed since the run?"
        )
    if spec.tta == "hflip":
        from pneumobench.serving.ensemble import MirrorAveraged

        model = MirrorAveraged(model)
    return model.eval(), spec


def parity_images(folder: Path) -> np.ndarray:
    """The real test images stored with the bundle, (N, H, W) uint8."""
    return np.load(folder / PARITY_FILE, allow_pickle=False)
