"""What the terminal shows while a benchmark runs.

On a terminal: a run bar (models done, the run's ETA) and one live bar per model (model i/N,
trial i/N, epoch, the batches of the running epoch with images/s, the current best, elapsed and
ETA), with finished trials printed above the bars. Elsewhere (CI logs, ``| tee``, files): plain
lines, one per epoch, and a status line at least every ``STATUS_EVERY_S`` seconds while an epoch
runs, so a log never looks hung.

The ETAs come from measured epoch times (``RunClock``): the epochs still planned (trials x max
epochs, early stopping makes them shorter) times the mean measured seconds per epoch of that
model, or of every model measured so far for one not yet started.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pneumobench.tracking import schema as S

STATUS_EVERY_S = 60.0  # plain output: the longest silence while an epoch runs
BATCH_REFRESH_S = 0.5  # live output: how often the batch counter is redrawn


def duration(seconds: float) -> str:
    """``1 h 05 min``, ``12 min``, ``40 s``; ``?`` when unknown."""
    if seconds != seconds or seconds < 0:  # NaN
        return "?"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 90:
        return f"{round(seconds / 60)} min"
    return f"{int(seconds)} s"


@dataclass
class RunClock:
    """Planned and measured epochs of every model of the run: the run's ETA."""

    planned: dict[str, int] = field(default_factory=dict)  # label -> epochs planned (left)
    seconds: dict[str, list[float]] = field(default_factory=dict)  # measured epoch durations

    def plan(self, label: str, epochs: int) -> None:
        self.planned[label] = max(0, epochs)

    def measured(self, label: str, seconds: float) -> None:
        self.seconds.setdefault(label, []).append(seconds)
        self.planned[label] = max(0, self.planned.get(label, 0) - 1)

    def skip(self, label: str, epochs: int) -> None:
        """Epochs planned but not run (early stopping, pruning)."""
        self.planned[label] = max(0, self.planned.get(label, 0) - epochs)

    def remaining(self) -> float:
        """Seconds left, NaN before any epoch was measured."""
        everything = [s for values in self.seconds.values() for s in values]
        if not everything:
            return float("nan")
        overall = sum(everything) / len(everything)
        total = 0.0
        for label, epochs in self.planned.items():
            own = self.seconds.get(label)
            total += epochs * (sum(own) / len(own) if own else overall)
        return total


@dataclass
class _State:
    """Where the run is, for status lines."""

    model: str = ""
    model_index: int = 0
    n_models: int = 0
    trial: str = ""
    epoch: str = ""
    batch: tuple[int, int] = (0, 0)
    epoch_started: float = 0.0


class PlainProgress:
    """Line by line, for logs."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.clock = RunClock()
        self.state = _State()
        self.order: list[str] = []
        self.max_epochs: dict[str, int] = {}
        self.epochs_done: dict[str, int] = {}
        self._last_status = time.monotonic()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_started(self, models: list[tuple[str, int, int]]) -> None:
        """The run's models in order, each as (label, trials, max epochs)."""
        self.order = [label for label, _, _ in models]
        self.state.n_models = len(models)
        for label, trials, epochs in models:
            self.clock.plan(label, trials * epochs)

    def model_started(self, label: str, n_trials: int, done: int, max_epochs: int) -> None:
        """A model's search begins (``done`` trials kept from before)."""
        self.state.model = label
        self.state.model_index = self.order.index(label) + 1 if label in self.order else 0
        self.max_epochs[label] = max_epochs
        self.clock.plan(label, max(0, n_trials - done) * max_epochs)

    def trial_started(self, label: str, number: int, index: int, n_trials: int) -> None:
        """Trial ``number`` starts as the ``index``-th of ``n_trials``."""
        self.epochs_done[label] = 0
        self.state.epoch = f"1/{self.max_epochs.get(label, '?')}"
        self.state.trial = f"{index}/{n_trials}"
        self.state.epoch_started = time.monotonic()

    def batch(self, label: str, done: int, total: int) -> None:
        """``done`` of ``total`` training images of the running epoch have been stepped on."""
        self.state.batch = (done, total)
        if time.monotonic() - self._last_status >= STATUS_EVERY_S:
            self.console.print(f"  [dim]status: {self.status()}[/]")
            self._last_status = time.monotonic()

    def status(self) -> str:
        """``model 2/4 resnet18 · trial 3/6 · epoch 2/4 · 1200/3800 images, 390 img/s ·
        run ETA 12 min``."""
        s = self.state
        done, total = s.batch
        elapsed = time.monotonic() - s.epoch_started
        rate = f", {done / elapsed:.0f} img/s" if elapsed > 0 and done else ""
        if elapsed > 0 and 0 < done < total:
            rate += f", epoch ETA {duration((total - done) * elapsed / done)}"
        parts = [f"model {s.model_index}/{s.n_models} {s.model}", f"trial {s.trial}"]
        if s.epoch:
            parts.append(f"epoch {s.epoch}")
        if total:
            parts.append(f"{done}/{total} images{rate}")
        parts.append(f"run ETA {duration(self.clock.remaining())}")
        return " · ".join(parts)

    def epoch(
        self,
        label: str,
        number: int,
        epoch: int,
        max_epochs: int,
        metrics: dict[str, float],
        objective: str,
    ) -> None:
        """One epoch of a trial finished."""
        self._epoch_done(label, epoch, max_epochs, metrics)
        self.console.print(
            f"  [dim]{label} trial {number} epoch {epoch}/{max_epochs}: "
            f"train_loss {metrics[S.TRAIN_LOSS]:.4f}, {objective} {metrics[objective]:.4f}, "
            f"{metrics['images_per_second']:.0f} img/s[/]"
        )
        self._last_status = time.monotonic()

    def _epoch_done(
        self, label: str, epoch: int, max_epochs: int, metrics: dict[str, float]
    ) -> None:
        seconds = time.monotonic() - self.state.epoch_started
        self.clock.measured(label, metrics.get("epoch_seconds", seconds))
        self.state.epoch = f"{epoch + 1}/{max_epochs}" if epoch < max_epochs else ""
        self.state.batch = (0, 0)
        self.state.epoch_started = time.monotonic()
        self.epochs_done[label] = epoch

    def trial_finished(self, label: str, best: float | None) -> None:
        """A trial ended; ``best`` is the study's best value so far."""
        skipped = self.max_epochs.get(label, 0) - self.epochs_done.get(label, 0)
        if skipped > 0:
            self.clock.skip(label, skipped)
        self.epochs_done[label] = 0

    def model_finished(self, label: str) -> None:
        """A model's search is over (in this worker)."""
        self.clock.plan(label, 0)

    def close(self) -> None:
        """Stop drawing."""
        pass


class LiveProgress(PlainProgress):
    """A run bar and a live bar per model; their ETAs count epochs, the unit of work every
    trial shares."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            TextColumn("{task.fields[trial]}"),
            TextColumn("{task.fields[epoch]}"),
            TextColumn("{task.fields[batch]}"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.run_task: TaskID | None = None
        self._last_batch = 0.0
        self.progress.start()

    def run_started(self, models: list[tuple[str, int, int]]) -> None:
        super().run_started(models)
        self.run_task = self.progress.add_task(
            f"run: {len(models)} model(s)",
            total=len(models),
            trial="",
            epoch="",
            batch="",
            best="-",
        )

    def model_started(self, label: str, n_trials: int, done: int, max_epochs: int) -> None:
        super().model_started(label, n_trials, done, max_epochs)
        where = f"model {self.state.model_index}/{self.state.n_models} " if self.order else ""
        self.tasks[label] = self.progress.add_task(
            f"{where}{label}",
            total=max(1, n_trials - done) * max_epochs,
            trial=f"trial {done}/{n_trials}",
            epoch="epoch -",
            batch="",
            best="-",
        )

    def trial_started(self, label: str, number: int, index: int, n_trials: int) -> None:
        super().trial_started(label, number, index, n_trials)
        self._update(label, trial=f"trial {index}/{n_trials} (#{number})", epoch="epoch 1")

    def batch(self, label: str, done: int, total: int) -> None:
        self.state.batch = (done, total)
        now = time.monotonic()
        if now - self._last_batch < BATCH_REFRESH_S and done < total:
            return
        self._last_batch = now
        elapsed = now - self.state.epoch_started
        rate = f" {done / elapsed:.0f} img/s" if elapsed > 0 else ""
        if elapsed > 0 and 0 < done < total:
            rate += f" ~{duration((total - done) * elapsed / done)} left"
        self._update(label, batch=f"{done}/{total} img{rate}")
        self._run_eta()

    def epoch(
        self,
        label: str,
        number: int,
        epoch: int,
        max_epochs: int,
        metrics: dict[str, float],
        objective: str,
    ) -> None:
        self._epoch_done(label, epoch, max_epochs, metrics)
        task = self.tasks.get(label)
        if task is not None:
            self.progress.advance(task, 1)
        shown = f"epoch {epoch}/{max_epochs} {objective} {metrics[objective]:.3f}"
        self._update(label, epoch=shown, batch="")
        self._run_eta()

    def trial_finished(self, label: str, best: float | None) -> None:
        task = self.tasks.get(label)
        if task is not None:  # early stopping and pruning skip epochs: count them as done
            skipped = self.max_epochs[label] - self.epochs_done.get(label, 0)
            if skipped > 0:
                self.progress.advance(task, skipped)
        super().trial_finished(label, best)
        self._update(label, best="-" if best is None else f"{best:.4f}")

    def model_finished(self, label: str) -> None:
        super().model_finished(label)
        task = self.tasks.get(label)
        if task is not None:
            self.progress.update(task, completed=self.progress.tasks[task].total)
        if self.run_task is not None:
            self.progress.advance(self.run_task, 1)
        self._run_eta()

    def _run_eta(self) -> None:
        if self.run_task is not None:
            left = duration(self.clock.remaining())
            self.progress.update(self.run_task, epoch=f"run ETA {left}")

    def _update(self, label: str, **fields: Any) -> None:
        task = self.tasks.get(label)
        if task is not None:
            self.progress.update(task, **fields)

    def close(self) -> None:
        self.progress.stop()


def make_progress(console: Console) -> PlainProgress:
    """Live bars on a terminal, plain lines elsewhere."""
    return LiveProgress(console) if console.is_terminal else PlainProgress(console)
