"""Where a run's time goes: seconds per stage, per model, for the run's summary and MLflow.

``stage(name, label)`` times a block; nested blocks are subtracted from the enclosing one, so
the stages add up to the time covered, and ``report(wall)`` names the rest ``other``. The
stages: ``start-up`` (config, store probe, importing torch and mlflow); ``setup`` (devices,
plugins, storages, every model built and its weights loaded); ``data`` (preparation, without
``leak checks``); ``training`` (inside ``fit`` only: the epochs and their validation passes, of
search trials and seed repeats alike); ``search bookkeeping`` (what a trial costs around its
``fit``: Optuna's storage, its MLflow run, admissions, claims, checkpoints); ``final
evaluation`` (the test and validation predictions); ``bootstraps`` (every interval);
``saliency`` (Grad-CAM panels); ``logging and registry`` (MLflow writes of epochs and results,
bundles, TorchScript, registered versions, the champion alias); ``ensembles`` (the rest of the
ensemble rows); ``report`` (the leaderboard the run prints).
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator

TRAINING = "training"
STAGES = (
    "start-up",
    "setup",
    "data",
    "leak checks",
    TRAINING,
    "search bookkeeping",
    "final evaluation",
    "bootstraps",
    "saliency",
    "logging and registry",
    "ensembles",
    "report",
)

_seconds: dict[tuple[str, str], float] = defaultdict(float)
_open: list[list[float]] = []  # per open stage: [started, seconds of its nested stages]
_models: list[str] = []  # the model whose stages these are (innermost last)


@contextlib.contextmanager
def model(label: str) -> Iterator[None]:
    """Stages inside the block belong to model ``label`` unless they name another."""
    _models.append(label)
    try:
        yield
    finally:
        _models.pop()


@contextlib.contextmanager
def stage(name: str, label: str | None = None) -> Iterator[None]:
    """Time the block as ``name`` (of model ``label``, else the current ``model``, else the
    run), nested stages excluded."""
    label = label if label is not None else (_models[-1] if _models else "")
    frame = [time.perf_counter(), 0.0]
    _open.append(frame)
    try:
        yield
    finally:
        _open.pop()
        spent = time.perf_counter() - frame[0]
        _seconds[(name, label)] += spent - frame[1]
        if _open:
            _open[-1][1] += spent


def reset() -> None:
    """Start a new run's profile."""
    _seconds.clear()
    _open.clear()
    _models.clear()


def forget_models() -> None:
    """A new run's models start from zero (the run's own stages, such as ``start-up``, stay)."""
    for key in [key for key in _seconds if key[1]]:
        del _seconds[key]
    _models.clear()


def of_model(label: str) -> dict[str, float]:
    """``{stage: seconds}`` of one model."""
    return {name: s for (name, who), s in _seconds.items() if who == label}


def totals() -> dict[str, float]:
    """``{stage: seconds}`` over the whole run, in ``STAGES`` order."""
    out: dict[str, float] = defaultdict(float)
    for (name, _), seconds in _seconds.items():
        out[name] += seconds
    return {name: out[name] for name in (*STAGES, *sorted(set(out) - set(STAGES))) if name in out}


def report(wall: float) -> list[tuple[str, float, float]]:
    """(stage, seconds, share of ``wall``) rows, then ``other`` (what no stage covers)."""
    rows = [(name, seconds, seconds / wall if wall else 0.0) for name, seconds in totals().items()]
    other = wall - sum(s for _, s, _ in rows)
    return [*rows, ("other", other, other / wall if wall else 0.0)]


def as_json(wall: float) -> dict[str, object]:
    """The run's profile as ``--profile-out`` writes it: wall seconds, the stages with their
    shares, and the non-training share (everything but ``training``, ``other`` included)."""
    rows = report(wall)
    return {
        "wall_seconds": round(wall, 3),
        "stages": [{"stage": n, "seconds": round(s, 3), "share": round(f, 5)} for n, s, f in rows],
        "non_training_share": round(1 - totals().get(TRAINING, 0.0) / wall, 5) if wall else None,
    }
