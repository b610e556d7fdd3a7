"""What the terminal shows while a benchmark runs.

On a terminal: one live rich progress bar per model (trial i/N, epoch, current best, elapsed and
ETA), with finished trials printed above the bars. Elsewhere (CI logs, ``| tee``, files): the same
information as plain lines, one per epoch and one per trial, so a log reads top to bottom.
"""

from __future__ import annotations

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


class PlainProgress:
    """Line by line, for logs."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def model_started(self, label: str, n_trials: int, done: int, max_epochs: int) -> None:
        """A model's search begins (``done`` trials kept from before)."""
        pass

    def trial_started(self, label: str, number: int, index: int, n_trials: int) -> None:
        """Trial ``number`` starts as the ``index``-th of ``n_trials``."""
        pass

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
        self.console.print(
            f"  [dim]{label} trial {number} epoch {epoch}/{max_epochs}: "
            f"train_loss {metrics[S.TRAIN_LOSS]:.4f}, {objective} {metrics[objective]:.4f}, "
            f"{metrics['images_per_second']:.0f} img/s[/]"
        )

    def trial_finished(self, label: str, best: float | None) -> None:
        """A trial ended; ``best`` is the study's best value so far."""
        pass

    def model_finished(self, label: str) -> None:
        """A model's search is over (in this worker)."""
        pass

    def close(self) -> None:
        """Stop drawing."""
        pass


class LiveProgress(PlainProgress):
    """A live bar per model; its ETA counts epochs, the unit of work every trial shares."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("trial {task.fields[trial]}"),
            TextColumn("epoch {task.fields[epoch]}"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.max_epochs: dict[str, int] = {}
        self.epochs_done: dict[str, int] = {}
        self.progress.start()

    def model_started(self, label: str, n_trials: int, done: int, max_epochs: int) -> None:
        self.max_epochs[label] = max_epochs
        self.tasks[label] = self.progress.add_task(
            label,
            total=max(1, n_trials - done) * max_epochs,
            trial=f"{done}/{n_trials}",
            epoch="-",
            best="-",
        )

    def trial_started(self, label: str, number: int, index: int, n_trials: int) -> None:
        self.epochs_done[label] = 0
        self._update(label, trial=f"{index}/{n_trials} (#{number})", epoch="0")

    def epoch(
        self,
        label: str,
        number: int,
        epoch: int,
        max_epochs: int,
        metrics: dict[str, float],
        objective: str,
    ) -> None:
        self.epochs_done[label] = epoch
        task = self.tasks.get(label)
        if task is not None:
            self.progress.advance(task, 1)
        self._update(label, epoch=f"{epoch}/{max_epochs} {objective} {metrics[objective]:.3f}")

    def trial_finished(self, label: str, best: float | None) -> None:
        task = self.tasks.get(label)
        if task is not None:  # early stopping and pruning skip epochs: count them as done
            skipped = self.max_epochs[label] - self.epochs_done.get(label, 0)
            if skipped > 0:
                self.progress.advance(task, skipped)
        self._update(label, best="-" if best is None else f"{best:.4f}")

    def model_finished(self, label: str) -> None:
        task = self.tasks.get(label)
        if task is not None:
            self.progress.update(task, completed=self.progress.tasks[task].total)

    def _update(self, label: str, **fields: Any) -> None:
        task = self.tasks.get(label)
        if task is not None:
            self.progress.update(task, **fields)

    def close(self) -> None:
        self.progress.stop()


def make_progress(console: Console) -> PlainProgress:
    """Live bars on a terminal, plain lines elsewhere."""
    return LiveProgress(console) if console.is_terminal else PlainProgress(console)
