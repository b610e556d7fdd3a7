"""Building a plan's model: pretrained weights fetched once, the same start for every trial.

Rule for the initial weights, stated once: every trial starts from the weights drawn (or
downloaded) with the experiment's seed, so trials differ only in their hyperparameters. A seed
repeat of a model trained from scratch draws new initial weights with its own seed; a pretrained
model keeps its pretrained start (that is what "pretrained" means) and varies in batch order and
augmentation only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pneumobench.config.plan import ModelPlan
from pneumobench.registry import create_model
from pneumobench.train.protocol import seed_everything


@dataclass(frozen=True)
class ModelFacts:
    """What the registry built: logged as tags and shown in the console."""

    family: str
    num_params: int
    pretrained_source: str  # "none" for a model trained from scratch

    @property
    def pretrained(self) -> bool:
        """Whether the model starts from pretrained weights."""
        return self.pretrained_source != "none"


class StartingPoint:
    """The plan's initial model. Built (and pretrained weights fetched) at construction, so a
    model whose weights cannot be had fails before any trial."""

    def __init__(self, plan: ModelPlan, num_classes: int) -> None:
        self.plan, self.num_classes = plan, num_classes
        seed_everything(plan.seed)
        model = self._create(plan.pretrained, plan.protocol.dropout)
        self._state = {k: v.clone() for k, v in model.state_dict().items()}
        self.facts = ModelFacts(model.family, model.num_params, model.pretrained_source)

    def build(self, dropout: float, seed: int | None = None) -> torch.nn.Module:
        """A fresh model at the starting weights (see the module's rule for ``seed``)."""
        if seed is not None and seed != self.plan.seed and not self.facts.pretrained:
            seed_everything(seed)
            return self._create(False, dropout)
        model = self._create(False, dropout)
        model.load_state_dict(self._state)
        model.pretrained_source = self.facts.pretrained_source
        return model

    def _create(self, pretrained: bool | str | None, dropout: float) -> torch.nn.Module:
        return create_model(
            self.plan.registry_name,
            self.num_classes,
            pretrained=pretrained,
            dropout=dropout,
            image_size=self.plan.image_size,
        )
