"""Fault injection: a run killed mid-trial (SIGKILL, SIGINT) resumes to the same result structure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT, storage_uri, store_uri, tiny_config, write_config

N_TRIALS = 3


def _config(tmp_path: Path, data: Path) -> Path:
    raw = tiny_config(data, models=["simple_cnn"])
    raw["protocol"].update(max_epochs=40, patience=40)  # long enough trials to be killed inside
    raw["search"]["n_trials"] = N_TRIALS
    return write_config(tmp_path / "experiments.yaml", raw)


def _start(config: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "pneumobench.cli", "run", str(config)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(proc: subprocess.Popen, needle: str, timeout: float = 240) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    proc.kill()
    raise AssertionError(f"never saw {needle!r}:\n{''.join(seen)}")


def _trial_runs() -> list:
    client = mlflow.MlflowClient(store_uri())
    exp = client.get_experiment_by_name("tiny")
    return client.search_runs([exp.experiment_id], "tags.`pneumobench.role` = 'trial'")


def _assert_complete_structure() -> optuna.Study:
    study = optuna.load_study(study_name="tiny/simple_cnn", storage=storage_uri())
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == N_TRIALS
    assert not study.get_trials(states=(TrialState.RUNNING,))
    runs = _trial_runs()
    assert len({r.info.run_id for r in runs}) == len(runs) == len(study.trials)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    client = mlflow.MlflowClient(store_uri())
    exp = client.get_experiment_by_name("tiny")
    parents = client.search_runs([exp.experiment_id], "tags.`pneumobench.role` = 'model'")
    assert len(parents) == 1 and parents[0].data.tags["pneumobench.final_evaluation"] == "done"
    assert parents[0].info.status == "FINISHED"
    return study


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_run_resumes_without_loss_or_duplicates(
    tmp_path: Path, fake_kermany: Path, sig: signal.Signals
) -> None:
    config = _config(tmp_path, fake_kermany)
    proc = _start(config, tmp_path)
    _wait_for(proc, "trial 1 epoch 3/")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, out[-4000:]
        assert "Resume with the same command" in out
        assert "Traceback" not in out, out[-4000:]  # one line and the resume command
        killed = [r for r in _trial_runs() if r.info.status == "KILLED"]
        assert len(killed) == 1 and killed[0].info.run_name == "simple_cnn/trial-001"
    else:
        assert proc.returncode == -signal.SIGKILL

    study = optuna.load_study(study_name="tiny/simple_cnn", storage=storage_uri())
    assert study.trials[0].state == TrialState.COMPLETE

    again = _start(config, tmp_path)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    study = _assert_complete_structure()
    states = {t.number: t.state for t in study.trials}
    assert states[1] == TrialState.FAIL  # the cut-off trial, its slot run again
    killed_run = next(r for r in _trial_runs() if r.info.run_name == "simple_cnn/trial-001")
    assert killed_run.info.status in ("FAILED", "KILLED")
    assert killed_run.data.tags["pneumobench.trial_state"] in ("FAIL", "INTERRUPTED")


# --- bad data and bad settings: one readable message naming the culprit, exit code 2 ---------


def _break_truncated(root: Path) -> str:
    victim = next((root / "train" / "NORMAL").glob("*.jpeg"))
    victim.write_bytes(victim.read_bytes()[:50])
    return victim.name


def _break_empty_class(root: Path) -> str:
    for f in (root / "test" / "NORMAL").iterdir():
        f.unlink()
    return "NORMAL: class folder holds no images"


def _break_missing_split(root: Path) -> str:
    import shutil

    shutil.rmtree(root / "test")
    return "missing split folder(s) test"


def _break_unknown_class(root: Path) -> str:
    (root / "train" / "COVID").mkdir()
    return "unknown class folder(s) covid"


def _break_stray_file(root: Path) -> str:
    (root / "train" / "PNEUMONIA" / "labels.csv").write_text("a,b\n")
    return "labels.csv: not an image"


@pytest.mark.parametrize(
    "breaker",
    [
        _break_truncated,
        _break_empty_class,
        _break_missing_split,
        _break_unknown_class,
        _break_stray_file,
    ],
    ids=["truncated", "empty-class", "missing-split", "unknown-class", "stray-file"],
)
def test_bad_data_names_the_culprit_and_exits_2(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str], breaker
) -> None:
    from pneumobench.cli import main

    culprit = breaker(fake_kermany)
    config = write_config(tmp_path / "exp.yaml", tiny_config(fake_kermany))
    assert main(["run", str(config)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert culprit in err and "Traceback" not in err


def test_skip_bad_images_and_report_leaks(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from pneumobench.cli import main

    bad = _break_truncated(fake_kermany)
    (fake_kermany / "train" / "NORMAL" / ".DS_Store").write_text("litter")  # ignored quietly
    leaked = next((fake_kermany / "test" / "PNEUMONIA").glob("*.jpeg"))
    shutil.copy(leaked, fake_kermany / "train" / "PNEUMONIA" / "person77_bacteria_1.jpeg")
    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["data"]["on_bad_image"] = "skip"
    raw["search"]["n_trials"] = 1
    assert main(["run", str(write_config(tmp_path / "exp.yaml", raw))]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and bad in out and "leak: identical" in out
    client = mlflow.MlflowClient(store_uri())
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("tiny").experiment_id], "tags.`pneumobench.role` = 'model'"
    )
    assert parent.data.params["data.skipped_images"] == "1"
    assert parent.data.params["data.leak_identical_groups"] == "1"
    # the copy is also a near-duplicate of itself across splits, found by the picture
    assert parent.data.params["data.leak_near_duplicate_pairs"] == "1"
    listed = Path(client.download_artifacts(parent.info.run_id, "data/skipped_images.txt"))
    assert bad in listed.read_text()
    leaks = Path(client.download_artifacts(parent.info.run_id, "data/leaks.csv"))
    assert leaked.name in leaks.read_text()


def test_unreachable_tracking_and_storage_exit_2(
    tmp_path: Path,
    fake_kermany: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pneumobench.cli import main

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    config = write_config(tmp_path / "exp.yaml", tiny_config(fake_kermany))
    assert main(["run", str(config), "--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert "cannot reach the MLflow tracking store http://127.0.0.1:9" in capsys.readouterr().err
    assert main(["run", str(config), "--storage", "nosuchdb://x/y"]) == 2
    assert "'nosuchdb://x/y' cannot be used as the Optuna storage" in capsys.readouterr().err


def test_oom_and_nan_trials_are_recorded_and_the_study_completes(
    tmp_path: Path, fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from pneumobench.benchmark.run import trial as trial_module
    from pneumobench.cli import main

    real_fit = trial_module.fit
    calls = {"n": 0}

    def faulty_fit(model, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if calls["n"] == 2:
            with torch.no_grad():
                model.head[1].weight.fill_(float("nan"))
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(trial_module, "fit", faulty_fit)
    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["search"]["n_trials"] = 3
    assert main(["run", str(write_config(tmp_path / "exp.yaml", raw))]) == 0
    study = optuna.load_study(study_name="tiny/simple_cnn", storage=storage_uri())
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    runs = {r.info.run_name: r for r in _trial_runs()}
    oom = runs["simple_cnn/trial-000"].data.tags["pneumobench.fail_reason"]
    assert "out of memory" in oom and "smaller protocol.batch_size" in oom
    assert "nan" in runs["simple_cnn/trial-001"].data.tags["pneumobench.fail_reason"]
    assert runs["simple_cnn/trial-000"].info.status == "FAILED"


def test_a_model_whose_every_trial_fails_is_listed_as_failed(
    tmp_path: Path,
    fake_kermany: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from pneumobench.benchmark.run import trial as trial_module
    from pneumobench.benchmark.training import DivergedError
    from pneumobench.cli import main

    real_fit = trial_module.fit

    def fit_except_resnet(model, *args, **kwargs):
        if model.registry_name == "resnet18":
            raise DivergedError("training loss became nan in epoch 1")
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(trial_module, "fit", fit_except_resnet)
    raw = tiny_config(fake_kermany)
    raw["search"]["n_trials"] = 1
    config = write_config(tmp_path / "experiments.yaml", raw)
    assert main(["run", str(config)]) == 1  # something failed: the exit code says so
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["simple_cnn"]["rank"] == 1
    assert (
        rows["resnet18-scratch"]["status"] == "failed" and rows["resnet18-scratch"]["rank"] is None
    )


def test_a_worker_with_other_data_cannot_join_the_study(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.cli import main

    config = tiny_config(
        fake_kermany,
        models=["simple_cnn"],
        protocol={"max_epochs": 1, "patience": 1, "batch_size": 16},
        search={"n_trials": 1, "pruner": "none", "storage": "sqlite:///optuna.db"},
    )
    path = write_config(tmp_path / "experiments.yaml", config)
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    assert main(["run", str(path), "--set", "data.val_fraction=0.4"]) == 2
    err = capsys.readouterr().err
    assert "differ from the data" in " ".join(err.split())
