"""The package's layout rules, checked: who may talk to MLflow, how sources and plans plug in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from pneumobench.benchmark.run.plan import plan_models
from pneumobench.benchmark.run.weights import StartingPoint
from pneumobench.config import parse_config
from pneumobench.data.sources import SOURCES, get_source
from pneumobench.data.sources.base import DataSource
from pneumobench.errors import ConfigError
from tests.conftest import tiny_config

PACKAGE = Path(__file__).resolve().parent.parent / "pneumobench"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_tracking_package_imports_mlflow() -> None:
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "mlflow" in _imports(p) and p.parent.name != "tracking"
    ]
    assert offenders == []


def test_every_registered_source_implements_the_interface() -> None:
    for name in SOURCES:
        source = get_source(name)
        assert isinstance(source, DataSource) and source.name == name


def test_an_unknown_source_and_an_impossible_task_are_config_errors(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["data"]["source"] = "foldr"
    with pytest.raises(ConfigError, match="did you mean 'folder'"):
        parse_config(raw)
    raw["data"]["source"], raw["task"] = "medmnist", "multiclass"
    with pytest.raises(ConfigError, match="serves task binary only"):
        parse_config(raw)


def test_a_plan_applies_per_model_overrides_once(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["models"] = [
        {"name": "simple_cnn", "n_trials": 5, "protocol": {"lr": 0.05}},
        {"name": "resnet18", "pretrained": False, "label": "r18"},
    ]
    simple, r18 = plan_models(parse_config(raw))
    assert (simple.n_trials, simple.protocol.lr, simple.study_name) == (5, 0.05, "tiny/simple_cnn")
    assert r18.n_trials == raw["search"]["n_trials"] and r18.protocol.lr != 0.05
    assert r18.checkpoint_dir.parts[-2:] == ("tiny", "r18")


def test_every_trial_starts_from_the_same_weights_and_other_seeds_redraw_scratch_models(
    tmp_path: Path,
) -> None:
    raw = tiny_config(tmp_path)
    raw["models"] = ["simple_cnn"]
    start = StartingPoint(plan_models(parse_config(raw))[0], num_classes=2)

    def weights(model: torch.nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    first, second = weights(start.build(0.1)), weights(start.build(0.4))
    assert torch.equal(first, second)
    assert torch.equal(first, weights(start.build(0.1, seed=start.plan.seed)))
    assert not torch.equal(first, weights(start.build(0.1, seed=start.plan.seed + 1)))
    assert not start.facts.pretrained and start.facts.num_params > 0


def test_pixels_module_is_standalone() -> None:
    """pixels.py ships with every pyfunc model and runs where pneumobench is not installed."""
    imports = _imports(PACKAGE / "data" / "pixels.py")
    assert "pneumobench" not in imports
    assert imports <= {"__future__", "io", "pathlib", "numpy", "PIL", "pydicom"}


def test_the_pyfunc_model_code_needs_no_pneumobench() -> None:
    imports = _imports(PACKAGE / "tracking" / "pyfunc_model.py")
    assert "pneumobench" not in imports
