"""The best trial's weights on disk: written atomically, only the best kept, fetched when absent.

One file per trial, ``trial-NNNN.pt``, holding the state dict, the sampled hyperparameters, the
trial number and its validation score. Loaded with ``weights_only=True``: nothing in a checkpoint
can run code.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from pneumobench.errors import TrackingError, unsafe_load_reason


class CheckpointStore:
    """The checkpoints of one model's study, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @staticmethod
    def filename(number: int) -> str:
        """``trial-NNNN.pt``: the same name on disk and in MLflow."""
        return f"trial-{number:04d}.pt"

    def path(self, number: int) -> Path:
        """Where trial ``number``'s checkpoint lives on this worker."""
        return self.folder / self.filename(number)

    def save(self, number: int, state: dict, params: dict[str, Any], score: float) -> Path:
        """Temp file + rename: a crash mid-write never leaves a half checkpoint behind."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(number)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(
                {"state_dict": state, "params": params, "trial": number, "score": score}, tmp
            )
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target

    def keep_only(self, numbers: Iterable[int]) -> None:
        """Delete every trial's file but those of ``numbers`` (the best, and running trials)."""
        keep = {self.filename(k) for k in numbers}
        for path in self.folder.glob("trial-*.pt"):
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def load(
        self, number: int, fetch: Callable[[str], Path], where: str
    ) -> dict[str, torch.Tensor]:
        """The state dict of trial ``number``: this worker's file, else ``fetch(filename)`` (the
        copy logged to MLflow by the worker that ran it). ``where`` names that copy in errors."""
        path = self.path(number)
        if not path.is_file():
            try:
                path = fetch(self.filename(number))
            except Exception as exc:
                raise TrackingError(
                    f"the checkpoint of the best trial ({number}) is neither at {self.path(number)} "
                    f"nor in {where} ({type(exc).__name__}: {str(exc)[:300]}). With several "
                    "workers on several machines set tracking.upload_checkpoints: true (the "
                    "default for a tracking server); or delete the study to search again."
                ) from None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        except Exception as exc:
            raise TrackingError(
                f"{path}: not a pneumobench checkpoint ({unsafe_load_reason(exc)}); delete it "
                "and run again (the trial's weights are retrained)"
            ) from None
