"""The search does what the README says at small budgets, and never judges a frozen backbone."""

from __future__ import annotations

import optuna

from pneumobench.benchmark.search import make_pruner, startup_trials
from pneumobench.config import parse_config


def _config(**search: object) -> object:
    return parse_config(
        {"name": "t", "data": {"path": "x"}, "models": ["simple_cnn"], "search": search}
    )


def _prunable_steps(pruner: optuna.pruners.BasePruner, max_epochs: int) -> list[int]:
    """Epochs at which a trial far below two finished ones would be pruned."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for _ in range(3):
        trial = study.ask()
        for step in range(1, max_epochs + 1):
            trial.report(1.0, step)
        study.tell(trial, 1.0)
    trial = study.ask()
    out = []
    for step in range(1, max_epochs + 1):
        trial.report(0.0, step)
        if trial.should_prune():
            out.append(step)
    return out


def test_no_trial_is_pruned_while_its_backbone_is_frozen() -> None:
    config = _config(pruner="median")
    assert _prunable_steps(make_pruner(config, 6, frozen_epochs=2), 6)[0] == 3
    assert _prunable_steps(make_pruner(config, 6, frozen_epochs=0), 6)[0] == 1  # from scratch
    hyperband = make_pruner(_config(pruner="hyperband"), 6, frozen_epochs=2)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert hyperband._min_resource == 3


def test_tpe_random_start_is_scaled_to_the_budget() -> None:
    assert [startup_trials(n) for n in (1, 3, 6, 12, 40)] == [2, 2, 3, 6, 10]
