"""Models that average inside one network: an ensemble (its members' bundles inside its own)
and test-time mirror averaging, so that what was evaluated is what deploys.

A soft-vote ensemble row's probabilities are a weighted mean of its members' softmax outputs (a
top-k ensemble holding a seed ensemble gives each seed its share of that member's weight). The
``EnsembleModule`` computes exactly that and returns its logarithm as "logits": the softmax that
``predict``, the pyfunc model, TorchScript and ONNX apply to any model's output gives the mean
probabilities back, so every consumer of a bundle handles an ensemble unchanged, and an ONNX
export is one graph.

Bundle layout: ``spec.json`` (``members``: each member's folder and weight; the ensemble's own
thresholds), ``members/<i>/`` (each a complete single-model bundle), ``parity_images.npy``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from pneumobench.errors import ModelError


class EnsembleModule(nn.Module):
    """Weighted mean of the members' class probabilities; its log as the output."""

    def __init__(self, members: list[nn.Module], weights: list[float]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.zeros((), device=x.device)
        for i, member in enumerate(self.members):
            probs = probs + self.weights[i] * torch.softmax(member(x).float(), 1)
        return torch.log(probs.clamp_min(1e-30))


class MirrorAveraged(nn.Module):
    """Test-time augmentation as the evaluation did it (``evaluation.tta: hflip``): the mean of
    the probabilities of the image and its mirror image; its log as the output."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = torch.softmax(self.model(x).float(), 1)
        mirrored = torch.softmax(self.model(torch.flip(x, dims=[3])).float(), 1)
        return torch.log(((plain + mirrored) / 2).clamp_min(1e-30))


def load_ensemble(
    folder: Path, members: list[dict], load_member: Callable[[Path], tuple[nn.Module, object]]
) -> EnsembleModule:
    """The ensemble network of a bundle whose spec lists ``members`` (each loaded by
    ``load_member``, ``bundle.load_bundle``)."""
    modules, weights = [], []
    for entry in members:
        path = folder / str(entry["folder"])
        if not path.is_dir():
            raise ModelError(f"{folder}: the ensemble's member {entry['folder']} is missing")
        module, _ = load_member(path)
        modules.append(module)
        weights.append(float(entry["weight"]))
    return EnsembleModule(modules, weights).eval()
