"""`pneumobench run --workers N|auto`: N worker processes on the same studies."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from pneumobench.commands.main import main
from pneumobench.commands.workers import plan_workers
from tests.conftest import tiny_config, write_config


def test_workers_split_the_gpus_or_the_cores() -> None:
    assert [(w.gpu, w.threads) for w in plan_workers("auto", 1, ["0", "1"], 16)] == [
        ("0", 8),
        ("1", 8),
    ]
    packed = plan_workers("auto", 2, ["3"], 16)  # two small models on one GPU
    assert [w.gpu for w in packed] == ["3", "3"]
    assert [(w.gpu, w.threads) for w in plan_workers("2", 1, [], 2)] == [(None, 1), (None, 1)]
    assert len(plan_workers("auto", 1, [], 2)) == 1 and len(plan_workers("auto", 1, [], 16)) == 4
    with pytest.raises(Exception, match="--workers 'many'"):
        plan_workers("many", 1, [], 2)


@pytest.mark.slow
def test_two_workers_finish_exactly_n_trials_between_them(
    tmp_path: Path, fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["search"]["n_trials"] = 3
    raw["protocol"]["max_epochs"] = 1
    config = write_config(tmp_path / "experiments.yaml", raw)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config), "--workers", "2"]) == 0
    study = optuna.load_study(
        study_name="tiny/simple_cnn", storage=f"sqlite:///{tmp_path / 'optuna.db'}"
    )
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 3
    workers = {t.user_attrs.get("worker", "").rsplit(":", 1)[-1] for t in study.trials}
    assert (tmp_path / ".pneumobench" / "workers" / "worker-2.log").is_file()  # worker 1: terminal
    assert len(workers) >= 1  # who ran which trial is the claims' business; the count is exact
