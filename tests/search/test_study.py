"""Tests of pneumobench/search/study.py."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest

from pneumobench.commands.main import main
from pneumobench.config import parse_config
from pneumobench.search.study import make_pruner, startup_trials
from tests.conftest import tiny_config, write_config
from tests.servers import silent_port


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


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("lr", 1e-4, 1e-2, log=True) + trial.suggest_float("d", 0, 0.5)


def _study(url: str, seed: int = 42) -> optuna.Study:
    from pneumobench.search.study import make_sampler

    config = parse_config({"name": "t", "seed": seed, "data": {"path": "x"}, "models": ["a"]})
    return optuna.create_study(
        study_name="s",
        storage=url,
        sampler=make_sampler(config),
        load_if_exists=True,
        direction="maximize",
    )


def test_best_trial_breaks_ties_by_trial_number_so_workers_agree() -> None:
    import optuna

    from pneumobench.search.study import beats, best_trial

    study = optuna.create_study(direction="maximize")
    for value in (0.5, 1.0, 1.0, 0.9):
        study.enqueue_trial({})
        study.tell(study.ask(), value)
    best = best_trial(study)
    assert best is not None and best.number == 1
    assert not beats(1.0, 2, best, direction="maximize")  # a later tie keeps the earlier checkpoint
    assert beats(
        1.0, 0, best, direction="maximize"
    )  # an earlier number finishing later wins the tie
    assert beats(1.1, 9, best, direction="maximize") and not beats(
        0.99, 0, best, direction="maximize"
    )
    assert beats(0.1, 5, None, direction="minimize")


def test_no_trial_is_pruned_while_its_backbone_is_frozen() -> None:
    config = _config(pruner="median")
    assert _prunable_steps(make_pruner(config, 6, frozen_epochs=2), 6)[0] == 3
    assert _prunable_steps(make_pruner(config, 6, frozen_epochs=0), 6)[0] == 1  # from scratch
    hyperband = make_pruner(_config(pruner="hyperband"), 6, frozen_epochs=2)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert hyperband._min_resource == 3


def test_tpe_random_start_is_scaled_to_the_budget() -> None:
    assert [startup_trials(n) for n in (1, 3, 6, 12, 40)] == [2, 2, 3, 6, 10]


def test_resumed_and_parallel_searches_draw_new_samples_reproducibly(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # a resume: a new process (new sampler) on a study that holds two trials
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    _study(url).optimize(_objective, n_trials=2)
    _study(url).optimize(_objective, n_trials=2)
    resumed = [tuple(t.params.values()) for t in _study(url).trials]
    assert len(set(resumed)) == 4
    # two workers on one study: interleaved asks from two samplers
    url2 = f"sqlite:///{tmp_path / 'workers.db'}"
    a, b = _study(url2), _study(url2)
    for _ in range(2):
        for worker in (a, b):
            trial = worker.ask()
            worker.tell(trial, _objective(trial))
    parallel = [tuple(t.params.values()) for t in a.trials]
    assert len(set(parallel)) == 4
    # the same seed and order of trials gives the same sequence again
    url3 = f"sqlite:///{tmp_path / 'again.db'}"
    _study(url3).optimize(_objective, n_trials=2)
    _study(url3).optimize(_objective, n_trials=2)
    assert [tuple(t.params.values()) for t in _study(url3).trials] == resumed
    url4 = f"sqlite:///{tmp_path / 'other.db'}"
    _study(url4, seed=1).optimize(_objective, n_trials=1)
    assert tuple(_study(url4, seed=1).trials[0].params.values()) != resumed[0]


@pytest.mark.slow
def test_a_storage_server_that_accepts_and_never_answers_fails_in_seconds(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "e.yaml", tiny_config(fake_kermany))
    with silent_port() as port:
        url = f"postgresql://user@127.0.0.1:{port}/optuna"
        started = time.monotonic()
        assert main(["run", str(config), "--storage", url]) == 2
    assert time.monotonic() - started < 60
    assert f"cannot open the Optuna storage {url}" in capsys.readouterr().err
