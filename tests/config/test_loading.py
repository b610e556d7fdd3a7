"""Tests of pneumobench/config/loading.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pneumobench.commands.main import main
from pneumobench.config import apply_override, load_config, parse_config
from pneumobench.errors import ConfigError
from tests.conftest import tiny_config, write_config


def test_set_overrides_parse_yaml_values(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    apply_override(raw, "protocol.lr=0.01")
    apply_override(raw, "models.0=cifar_cnn")
    apply_override(raw, "data.augment.scale=[0.8, 1.2]")
    config = parse_config(raw)
    assert config.protocol.lr == 0.01
    assert config.models[0].name == "cifar_cnn"
    assert config.data.augment.scale == (0.8, 1.2)
    with pytest.raises(ConfigError, match=r"expected dotted\.key=value"):
        apply_override(raw, "protocol.lr")


def test_relative_data_path_uses_env_root_then_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tiny_config(Path("chest_xray"))
    (tmp_path / "sub").mkdir()
    path = write_config(tmp_path / "sub" / "exp.yaml", raw)
    assert load_config(path).data_path() == (tmp_path / "sub" / "chest_xray").resolve()
    monkeypatch.setenv("PNEUMOBENCH_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert load_config(path).data_path() == (tmp_path / "elsewhere" / "chest_xray").resolve()


def test_bad_labels_uris_bytes_duplicate_keys_and_set_errors_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tiny_config(tmp_path)
    raw["models"] = [{"name": "simple_cnn", "label": "o'brien"}]
    with pytest.raises(ConfigError, match="label 'o'brien' contains"):
        parse_config(raw)
    for uri, message in (
        ("ftp://host/x", "cannot be used as the MLflow tracking store"),
        ("sqlite:/mlflow.db", "three"),
    ):
        raw = tiny_config(tmp_path)
        raw["tracking"] = {"uri": uri}
        path = write_config(tmp_path / "uri.yaml", raw)
        assert main(["run", str(path)]) == 2
        assert message in capsys.readouterr().err
        assert not Path("optuna.db").exists()  # 12. nothing left behind
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: r\xe9sum\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(latin1)
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: a\nsearch: {n_trials: 2}\nmodels: [simple_cnn]\nsearch: {}\n")
    with pytest.raises(ConfigError, match=r"key 'search' is written twice .*lines 2 and 4"):
        load_config(twice)
    good = write_config(tmp_path / "good.yaml", tiny_config(tmp_path))
    with pytest.raises(ConfigError) as info:
        load_config(good, ["protocol.max_epochs=zero"])
    assert str(info.value).startswith("--set protocol.max_epochs=zero:")


def test_a_yaml_alias_bomb_is_refused_in_under_a_second(tmp_path: Path) -> None:
    import time

    from pneumobench.errors import ConfigError

    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="aliases"):
        load_config(bomb)
    assert time.monotonic() - started < 1.0
    small = tmp_path / "ok.yaml"  # an alias or two is fine
    small.write_text("name: x\ndata: &d {path: p}\nmodels: [simple_cnn]\nsearch: {space: {}}\n")
    assert load_config(small).name == "x"
