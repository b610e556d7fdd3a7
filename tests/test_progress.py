"""Tests of pneumobench/progress.py: what the terminal shows while a benchmark runs."""

from __future__ import annotations

import io

from rich.console import Console

from pneumobench.progress import LiveProgress, PlainProgress, make_progress

METRICS = {"train_loss": 0.5, "val_f1": 0.75, "images_per_second": 900.0}


def _drive(progress: PlainProgress) -> None:
    progress.model_started("resnet18", n_trials=2, done=0, max_epochs=3)
    progress.trial_started("resnet18", number=0, index=1, n_trials=2)
    for epoch in (1, 2):  # early-stopped after 2 of 3 epochs
        progress.epoch("resnet18", 0, epoch, 3, METRICS, "val_f1")
    progress.trial_finished("resnet18", best=0.75)


def test_live_progress_on_a_terminal_shows_trial_epoch_best_and_eta() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    progress = make_progress(console)
    assert isinstance(progress, LiveProgress)
    with progress:
        _drive(progress)
        task = progress.progress.tasks[0]
        assert task.total == 6 and task.completed == 3  # the skipped epoch counts as done
        progress.trial_started("resnet18", number=1, index=2, n_trials=2)
        progress.progress.refresh()
    text = out.getvalue()
    for piece in ("resnet18", "trial 2/2 (#1)", "best 0.7500", "ETA"):
        assert piece in text, piece


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=160)
    progress = make_progress(console)
    assert type(progress) is PlainProgress
    with progress:
        _drive(progress)
    lines = out.getvalue().splitlines()
    assert lines == [
        "  resnet18 trial 0 epoch 1/3: train_loss 0.5000, val_f1 0.7500, 900 img/s",
        "  resnet18 trial 0 epoch 2/3: train_loss 0.5000, val_f1 0.7500, 900 img/s",
    ]
    assert "\x1b[" not in out.getvalue()  # no escape codes in logs
