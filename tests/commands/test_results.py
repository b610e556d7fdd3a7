"""The commands that read results (leaderboard, report): empty results, and judging with the
config's resamples and alpha."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pneumobench.commands.main import main
from tests.conftest import tiny_config, write_config


def test_empty_results_say_so_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.tracking.store import open_experiment

    open_experiment("empty", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["leaderboard", "--experiment", "empty", "--format", "json"]) == 1
    assert "no model of experiment 'empty' has a final evaluation" in capsys.readouterr().err
    assert main(["report", "--experiment", "empty", "--out", "r.html", "--no-log"]) == 1
    assert not Path("r.html").exists()
    assert main(["models", "zzz*"]) == 1
    assert "no registry entry matches 'zzz*'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["leaderboard", "--experiment", "empty", "--resamples", "-5"])
    assert info.value.code == 2
    assert json.loads("[]") == []


def test_leaderboard_and_report_judge_with_the_configs_resamples_and_alpha(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_kermany: Path
) -> None:
    """The report once bootstrapped 1000 times where the leaderboard (and the run's own table)
    bootstrapped 2000, and ignored the config's alpha: on the default benchmark the two put
    ensemble-top3 in different groups (Holm p 0.056 against 0.032). Both now read
    evaluation.bootstrap_resamples and evaluation.alpha; a flag still wins."""
    import types

    import pneumobench.report.document as report
    import pneumobench.report.leaderboard as leaderboard

    raw = tiny_config(fake_kermany)
    raw["evaluation"] = {"bootstrap_resamples": 300, "alpha": 0.1}
    config = write_config(tmp_path / "e.yaml", raw)
    seen: list[tuple[str, int, float]] = []

    def fake_leaderboard(name, metric, uri, evaluation, **_):
        seen.append(("leaderboard", evaluation.bootstrap_resamples, evaluation.alpha))
        return []

    def fake_report(name, uri, storage, metric, evaluation, subgroups=None):
        seen.append(("report", evaluation.bootstrap_resamples, evaluation.alpha))
        return types.SimpleNamespace(models=[])

    monkeypatch.setattr(leaderboard, "load_leaderboard", fake_leaderboard)
    monkeypatch.setattr(report, "build_report", fake_report)
    monkeypatch.chdir(tmp_path)
    main(["leaderboard", "--config", str(config)])
    main(["report", "--config", str(config), "--out", "r.html", "--no-log"])
    main(["report", "--config", str(config), "--out", "r.html", "--no-log", "--resamples", "500"])
    main(["leaderboard", "--experiment", "x", "--tracking-uri", "sqlite:///m.db"])  # no config
    assert seen == [
        ("leaderboard", 300, 0.1),
        ("report", 300, 0.1),
        ("report", 500, 0.1),
        ("leaderboard", 2000, 0.05),
    ]
