"""Tests of pneumobench/serving/export.py."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from pneumobench.commands.main import main


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_passes_its_parity_check_and_is_logged(
    in_run_folder: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = in_run_folder / f"champion.{fmt}"
    assert main(["export", "--format", fmt, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "largest absolute probability difference" in text
    difference = float(text.split("difference ")[1].split()[0])
    assert difference < 1e-4
    run_id = mlflow.MlflowClient().get_model_version_by_alias("pneumobench-tiny", "champion").run_id
    logged = [f.path for f in mlflow.MlflowClient().list_artifacts(run_id, "export")]
    assert f"export/{out.name}" in logged
    if fmt == "onnx":  # a dynamic batch axis: any batch size runs
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert session.run(None, {"images": np.zeros((3, 1, 32, 32), np.float32)})[0].shape == (
            3,
            2,
        )
        meta = session.get_modelmeta().custom_metadata_map  # how to preprocess, in the file
        assert "(N, 1, 32, 32) float32" in meta["pneumobench.input"]
        assert "resize to 32 px" in meta["pneumobench.preprocessing"]
        assert "pneumonia when 1 - P(normal) >=" in meta["pneumobench.decision"]


def test_parity_failure_is_an_error_and_keeps_no_file(tmp_path: Path) -> None:
    from pneumobench.errors import ModelError
    from pneumobench.serving import export

    class Sneaky(torch.nn.Module):
        """Traces one branch, runs another: the exported file differs from PyTorch."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] == 1:
                return torch.zeros(x.shape[0], 2)
            return torch.stack([x.mean((1, 2, 3)), -x.mean((1, 2, 3))], 1) * 50

    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8), dtype=np.uint8)
    with pytest.raises(ModelError, match="differs from PyTorch"):
        export.export(Sneaky(), images, "torchscript", tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_an_export_the_exporter_refuses_is_a_clear_error(tmp_path: Path) -> None:
    from pneumobench.errors import ModelError
    from pneumobench.serving import export

    class Untraceable(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[float(x.sum().item() > 0), 0.0]]).repeat(len(x), 1)

    images = np.zeros((2, 8, 8), dtype=np.uint8)
    expected = r"cannot be exported as onnx|does not run for the parity check|differs from PyTorch"
    with pytest.raises(ModelError, match=expected):
        export.export(Untraceable(), images, "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
