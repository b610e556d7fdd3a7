"""Tests of pneumobench/registry/plugins.py."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

from pneumobench.commands.main import main
from pneumobench.registry import factory, table
from pneumobench.registry.plugins import PluginError, load_plugins
from tests.conftest import ROOT, tiny_config, write_config, write_fake_kermany

EXAMPLE = ROOT / "examples" / "my_models.py"

PACKAGE = ROOT / "examples" / "plugin_package"


def _install_package(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example package 'installed' the way pip does it: the module and a dist-info with the
    ``pneumobench.models`` entry point, on sys.path."""
    site = root / "site"
    shutil.copytree(PACKAGE / "pneumobench_tiny_models", site / "pneumobench_tiny_models")
    info = site / "pneumobench_tiny_models-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pneumobench-tiny-models\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[pneumobench.models]\ntiny_models = pneumobench_tiny_models\n"
    )
    monkeypatch.syspath_prepend(str(site))


def test_a_plugin_file_and_a_plugin_package_train_and_reach_the_leaderboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _install_package(tmp_path, monkeypatch)
    shutil.copy(EXAMPLE, tmp_path / "my_models.py")
    data = write_fake_kermany(tmp_path / "chest_xray", patients_per_class=8)
    raw = tiny_config(data, plugins=["my_models.py"], models=["my_cnn", "tiny_convnet"])
    raw["search"]["n_trials"] = 1
    config = write_config(tmp_path / "experiments.yaml", raw)
    assert main(["run", str(config)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"my_cnn", "tiny_convnet"}
    assert all(r["status"] == "evaluated" for r in rows.values())
    import mlflow

    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(
        rows["my_cnn"]["run_id"]
    )
    assert str(tmp_path / "my_models.py") in run.data.tags["model_origin"]
    # `pneumobench models` lists both, with where they come from
    assert main(["models", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "my_cnn" in listing and "tiny_convnet" in listing
    assert listing.count("plugin") >= 2  # their source column
    assert "pneumobench-tiny-models" in factory.get_architecture("tiny_convnet").origin
    assert "my_models.py" in factory.get_architecture("my_cnn").origin


def test_plugin_that_fails_to_import_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.py").write_text(
        "import torch\n\nx = 1\nraise RuntimeError('no GPU here')\n"
    )
    raw = tiny_config(tmp_path / "data", plugins=["broken.py"])
    config = write_config(tmp_path / "experiments.yaml", raw)
    started = time.monotonic()
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'broken.py'}:4" in err.replace("\n", "")
    assert "plugins[0]" in err and "RuntimeError" in err
    assert time.monotonic() - started < 30


def test_plugin_syntax_error_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "typo.py").write_text("def f(:\n    pass\n")
    with pytest.raises(PluginError, match=r"typo\.py:1: SyntaxError"):
        load_plugins(["typo.py"], tmp_path)
    with pytest.raises(PluginError, match="no such file"):
        load_plugins(["nowhere.py"], tmp_path)
    with pytest.raises(PluginError, match="No module named"):
        load_plugins(["not_a_module_anywhere"], tmp_path)


def test_a_clashing_name_is_an_error_and_leaves_nothing_registered(tmp_path: Path) -> None:
    (tmp_path / "clash.py").write_text(
        "from pneumobench.registry import Backbone, register_model\n"
        "\n"
        "@register_model(family='x')\n"
        "def mine_first(pretrained, in_chans, image_size):\n"
        "    raise NotImplementedError\n"
        "\n"
        "@register_model(family='x')\n"
        "def resnet18(pretrained, in_chans, image_size):\n"
        "    raise NotImplementedError\n"
    )
    with pytest.raises(PluginError) as info:
        load_plugins(["clash.py"], tmp_path)
    message = str(info.value)
    assert "clash.py:7" in message or "clash.py:8" in message
    assert "'resnet18'" in message and "taken by pneumobench" in message
    assert "mine_first" not in table.registered_names()  # the half-loaded plugin is gone


def test_loading_the_same_plugin_twice_is_a_no_op(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "my_models.py")
    first = load_plugins(["my_models.py"], tmp_path)
    assert load_plugins([str(tmp_path / "my_models.py")]) == first
    arch = factory.get_architecture("my_cnn")
    assert arch.source == "plugin" and "my_models.py" in arch.origin
    model = factory.create_model("my_cnn", 2, pretrained=False, image_size=32)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 2)


def test_broken_installed_plugin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pneumobench.registry.plugins import load_entry_points

    site = tmp_path / "site"
    (site / "badpkg").mkdir(parents=True)
    (site / "badpkg" / "__init__.py").write_text("import does_not_exist_anywhere\n")
    info = site / "badpkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: badpkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pneumobench.models]\nbad = badpkg\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(PluginError, match=r"entry point 'bad' of package badpkg.*__init__\.py:1"):
        load_entry_points()
    sys.modules.pop("badpkg", None)
