"""Closing orphaned trial runs when several workers sweep at once."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from pneumobench.tracking import schema as S
from pneumobench.tracking.writer import close_orphan_trial_run


@pytest.fixture
def orphan(tmp_path: Path) -> str:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("orphans")
    return mlflow.MlflowClient().create_run(experiment).info.run_id


def test_an_orphan_is_failed_with_its_reason(orphan: str) -> None:
    assert close_orphan_trial_run(orphan) is True
    run = mlflow.MlflowClient().get_run(orphan)
    assert run.info.status == "FAILED"
    assert run.data.tags[S.TRIAL_STATE] == "FAIL"
    assert "killed" in run.data.tags[S.FAIL_REASON]
    assert close_orphan_trial_run(orphan) is False  # already closed: left alone


def test_a_worker_that_loses_the_race_leaves_the_run_alone(
    orphan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker closes the run between our read and our write; the store rejects our
    tags (PostgreSQL: duplicate key). That must not crash the worker."""
    client = mlflow.MlflowClient()
    real_log_batch = mlflow.MlflowClient.log_batch

    def racing_log_batch(self: mlflow.MlflowClient, run_id: str, **kwargs: object) -> None:
        real_log_batch(self, run_id, tags=kwargs["tags"])  # the other worker's write
        client.set_terminated(run_id, "FAILED")
        raise MlflowException('duplicate key value violates unique constraint "tag_pk"')

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", racing_log_batch)
    assert close_orphan_trial_run(orphan) is False
    assert client.get_run(orphan).info.status == "FAILED"


def test_a_store_that_keeps_failing_is_reported(
    orphan: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: mlflow.MlflowClient, run_id: str, **kwargs: object) -> None:
        raise MlflowException("database is locked")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", broken)
    with pytest.raises(MlflowException, match="locked"):
        close_orphan_trial_run(orphan, attempts=2)


def test_the_gpu_monitor_keeps_this_workers_gpu_only() -> None:
    from pneumobench.tracking.gpu_metrics import only_this_gpu

    class Monitor:  # MLflow's GPUMonitor, as far as the filter sees it
        def __init__(self) -> None:
            self.gpu_handles = ["h0", "h1", "h2"]
            self.num_gpus = 3

    uuids = {"h0": "GPU-aaaa", "h1": "GPU-BBBB", "h2": "GPU-cccc"}
    only_this_gpu("bbbb", Monitor, uuids.__getitem__)  # torch's UUID: no prefix, any case
    monitor = Monitor()
    assert monitor.gpu_handles == ["h1"] and monitor.num_gpus == 1
    only_this_gpu("cccc", Monitor, uuids.__getitem__)  # re-pointed, not stacked
    assert Monitor().gpu_handles == ["h2"]
    only_this_gpu(None, Monitor, uuids.__getitem__)  # CPU: unchanged
    assert Monitor().gpu_handles == ["h2"]
