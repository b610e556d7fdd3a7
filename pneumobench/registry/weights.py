"""Turning a failed pretrained-weights fetch into an error that says what to do."""

from __future__ import annotations

import os

from pneumobench.errors import ModelError


def weights_unavailable(model: str, what: str, exc: BaseException, cache_hint: str) -> ModelError:
    """The error for weights that cannot be fetched: the reason and every way out."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelError(
        f"could not load pretrained weights for '{model}' ({what}): {reason}\n"
        "Ways out:\n"
        f"  - train it from scratch: set `pretrained: false` for this model in the config\n"
        f"  - put the weights in the local cache: {cache_hint}\n"
        "  - run once on a machine with internet access to fill that cache\n"
        "pneumobench never falls back to random weights silently."
    )


def torch_hub_dir() -> str:
    """torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)."""
    import torch

    return os.path.join(torch.hub.get_dir(), "checkpoints")
