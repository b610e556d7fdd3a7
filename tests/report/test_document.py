"""Tests of pneumobench/report/document.py."""

from __future__ import annotations

import base64
import json
import shutil
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pneumobench.commands.main import main
from tests.conftest import tiny_config, write_config
from tests.servers import mlflow_server

LABELS = ["simple_cnn", "simple_cnn-wide"]


def _get(url: str, endpoint: str, **query: str) -> dict:
    with urllib.request.urlopen(f"{url}{endpoint}?{urllib.parse.urlencode(query)}") as response:
        return json.load(response)


def _post(url: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}{endpoint}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.plots: list[str] = []
        self.images: list[str] = []
        self.cells: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure":
            self.plots.append(str(a.get("data-plot")))
        if tag == "img":
            self.images.append(str(a.get("src")))
        self._in_td = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_td:
            self.cells.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        self._in_td = False


def test_report_finds_the_optuna_storage_a_run_recorded(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --config or --storage (and no experiments.yaml at hand) the optimisation
    histories are still in the report: each model run recorded where its study lives."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.md"
    uri = f"sqlite:///{finished / 'mlflow.db'}"
    args = ["report", "--experiment", "tiny", "--tracking-uri", uri, "--out", str(out)]
    assert main([*args, "--no-log"]) == 0
    figures = {p.name for p in (tmp_path / "r_files").iterdir()}
    assert {"history_simple_cnn.png", "history_resnet18-scratch.png"} <= figures
    assert "saliency.png" in figures


@pytest.mark.slow
def test_server_rest_api_report_and_remote_checkpoint(tmp_path: Path, fake_kermany: Path) -> None:
    config = tiny_config(
        fake_kermany,
        protocol={"max_epochs": 3, "patience": 3, "batch_size": 16, "freeze_epochs": 0},
        models=[
            "simple_cnn",
            {"name": "simple_cnn", "label": "simple_cnn-wide", "protocol": {"dropout": 0.1}},
        ],
        tracking={"system_metrics_interval": 0.5},
    )
    path = write_config(tmp_path / "experiments.yaml", config)
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "server") as url:
        assert main(["run", str(path), "--tracking-uri", url]) == 0

        # --- what the UI reads: the REST API -------------------------------------------------
        experiment = _get(url, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="tiny")
        exp_id = experiment["experiment"]["experiment_id"]
        runs = _post(
            url, "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id], "max_results": 1000}
        )["runs"]
        by_name = {r["info"]["run_name"]: r for r in runs}
        expected = {*LABELS, *(f"{m}/trial-{i:03d}" for m in LABELS for i in range(2))}
        assert expected <= set(by_name), sorted(by_name)

        def metric_keys(run: dict) -> set[str]:
            return {m["key"] for m in run["data"].get("metrics", [])}

        trial_keys = [metric_keys(by_name[f"{m}/trial-{i:03d}"]) for m in LABELS for i in range(2)]
        for keys in trial_keys:  # the same names in every trial: the compare view lines up
            assert {"train_loss", "val_loss", "val_f1", "best_val_f1", "best_epoch"} <= keys
        assert any("system/cpu_utilization_percentage" in keys for keys in trial_keys)
        for label in LABELS:
            assert {"test_recall", "test_f1", "best_val_f1"} <= metric_keys(by_name[label])
        trial_id = by_name["simple_cnn/trial-000"]["info"]["run_id"]
        history = _get(
            url, "/api/2.0/mlflow/metrics/get-history", run_id=trial_id, metric_key="val_f1"
        )["metrics"]
        assert sorted(m["step"] for m in history) == [1, 2, 3]

        # --- the report ----------------------------------------------------------------------
        out = tmp_path / "report.html"
        assert (
            main(
                [
                    "report",
                    "--config",
                    str(path),
                    "--tracking-uri",
                    url,
                    "--out",
                    str(out),
                    "--resamples",
                    "100",
                ]
            )
            == 0
        )
        parsed = _Figures()
        parsed.feed(out.read_text())
        expected_plots = {
            "roc_pr",
            "confusion_matrices",
            "reliability",
            "decision_curve",
            "subgroups_forest",  # the fake file names' pathogens
            "saliency",
            "saliency_disagreement",
            "validation_curves",
            *(f"history_{m}" for m in LABELS),
            *(f"importances_{m}" for m in LABELS),
        }
        if "failures" in parsed.plots:  # only where the top model made an error at its threshold
            expected_plots.add("failures")
        assert sorted(parsed.plots) == sorted(expected_plots)
        assert len(parsed.images) == len(expected_plots)
        for src in parsed.images:  # embedded, so the file opens offline
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert set(LABELS) <= set(parsed.cells)
        assert any("torch" in cell for cell in parsed.cells)  # environment section
        summary = _post(
            url,
            "/api/2.0/mlflow/runs/search",
            {"experiment_ids": [exp_id], "filter": "tags.`pneumobench.role` = 'summary'"},
        )["runs"]
        assert len(summary) == 1
        files = _get(
            url,
            "/api/2.0/mlflow/artifacts/list",
            run_id=summary[0]["info"]["run_id"],
            path="report",
        )["files"]
        assert [f["path"] for f in files] == ["report/report.html"]

        md = tmp_path / "md" / "report.md"
        assert (
            main(
                [
                    "report",
                    "--config",
                    str(path),
                    "--tracking-uri",
                    url,
                    "--out",
                    str(md),
                    "--resamples",
                    "100",
                    "--no-log",
                ]
            )
            == 0
        )
        text = md.read_text()
        for plot in expected_plots:
            assert f"(report_files/{plot}.png)" in text
            assert (md.parent / "report_files" / f"{plot}.png").is_file()

        # --- a worker without the checkpoint file evaluates from the server's copy ------------
        shutil.rmtree(tmp_path / ".pneumobench" / "checkpoints")
        assert (
            main(["run", str(path), "--tracking-uri", url, "--models", "simple_cnn", "--force"])
            == 0
        )
        parent_id = by_name["simple_cnn"]["info"]["run_id"]
        history = _get(
            url, "/api/2.0/mlflow/metrics/get-history", run_id=parent_id, metric_key="test_recall"
        )["metrics"]
        assert len(history) == 2  # evaluated again, on demand, from the uploaded weights
