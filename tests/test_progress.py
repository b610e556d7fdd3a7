"""Tests of pneumobench/progress.py: what the terminal shows while a benchmark runs."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from pneumobench import progress as P
from pneumobench.progress import LiveProgress, PlainProgress, RunClock, duration, make_progress

METRICS = {"train_loss": 0.5, "val_f1": 0.75, "images_per_second": 900.0, "epoch_seconds": 2.0}


def _drive(progress: PlainProgress) -> None:
    progress.run_started([("resnet18", 2, 3), ("simple_cnn", 1, 3)])
    progress.model_started("resnet18", n_trials=2, done=0, max_epochs=3)
    progress.trial_started("resnet18", number=0, index=1, n_trials=2)
    for epoch in (1, 2):  # early-stopped after 2 of 3 epochs
        for done in (16, 32, 40):
            progress.batch("resnet18", done, 40)
        progress.epoch("resnet18", 0, epoch, 3, METRICS, "val_f1")
    progress.trial_finished("resnet18", best=0.75)


def test_live_progress_shows_model_of_n_trial_epoch_batches_best_and_both_etas() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    progress = make_progress(console)
    assert isinstance(progress, LiveProgress)
    with progress:
        _drive(progress)
        task = progress.progress.tasks[1]
        assert task.total == 6 and task.completed == 3  # the skipped epoch counts as done
        progress.trial_started("resnet18", number=1, index=2, n_trials=2)
        progress.batch("resnet18", 40, 40)
        progress.progress.refresh()
    text = out.getvalue()
    for piece in ("model 1/2 resnet18", "trial 2/2 (#1)", "40/40 img", "best 0.7500", "run ETA"):
        assert piece in text, piece


def test_plain_lines_and_a_status_line_when_an_epoch_runs_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    progress = make_progress(console)
    assert type(progress) is PlainProgress
    monkeypatch.setattr(P, "STATUS_EVERY_S", 0.0)  # every batch is "a minute later"
    with progress:
        _drive(progress)
    lines = out.getvalue().splitlines()
    epochs = [line for line in lines if " epoch " in line and "status" not in line]
    assert epochs == [
        "  resnet18 trial 0 epoch 1/3: train_loss 0.5000, val_f1 0.7500, 900 img/s",
        "  resnet18 trial 0 epoch 2/3: train_loss 0.5000, val_f1 0.7500, 900 img/s",
    ]
    status = [line for line in lines if line.startswith("  status: ")]
    assert status[0].startswith("  status: model 1/2 resnet18 · trial 1/2 · epoch 1/3 · 16/40")
    assert "run ETA" in status[-1]
    assert "\x1b[" not in out.getvalue()  # no escape codes in logs


def test_the_run_eta_comes_from_measured_epochs() -> None:
    clock = RunClock()
    clock.plan("a", 6)
    clock.plan("b", 4)
    assert duration(clock.remaining()) == "?"
    clock.measured("a", 10.0)
    clock.measured("a", 20.0)  # a: 4 left at 15 s; b: 4 at the overall mean, 15 s
    assert clock.remaining() == pytest.approx(120.0)
    clock.skip("a", 4)  # early stopping
    assert clock.remaining() == pytest.approx(60.0)
    assert [duration(s) for s in (40, 600, 3900)] == ["40 s", "10 min", "1 h 05 min"]
