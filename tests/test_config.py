from __future__ import annotations

from pathlib import Path

import pytest

from pneumobench.benchmark.run.plan import plan_model
from pneumobench.cli import main
from pneumobench.config import apply_override, load_config, parse_config
from pneumobench.errors import ConfigError
from tests.conftest import tiny_config, write_config


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "exp.yaml")
    return str(info.value)


def test_valid_config_fills_defaults(tmp_path: Path) -> None:
    config = parse_config(tiny_config(tmp_path))
    assert [m.key for m in config.models] == ["simple_cnn", "resnet18-scratch"]
    assert config.search.direction == "maximize"
    plan = plan_model(config, config.models[0])
    assert plan.protocol.batch_size == 16
    assert set(plan.space) == {"lr", "weight_decay", "dropout"}


def test_unknown_key_names_location_and_closest_key(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["data"]["imag_size"] = 32
    message = _error(raw)
    assert "data.imag_size" in message and "did you mean 'image_size'" in message


def test_unknown_key_inside_a_model_entry(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["models"][1]["pretraned"] = True
    assert "models[1].pretraned" in _error(raw) and "'pretrained'" in _error(raw)


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["protocol"]["max_epochs"] = "ten"
    message = _error(raw)
    assert "protocol.max_epochs" in message and "integer" in message and "'ten'" in message


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"type": "float", "low": 1.0, "high": 0.5}, "must be smaller than high"),
        ({"type": "float", "low": 0.0, "high": 0.5, "log": True}, "log scale needs low > 0"),
        ({"type": "categorical", "choices": []}, "choices"),
    ],
)
def test_impossible_search_space(tmp_path: Path, spec: dict, needle: str) -> None:
    raw = tiny_config(tmp_path)
    raw["search"]["space"] = {"lr": spec}
    assert needle in _error(raw)


def test_space_key_must_be_a_protocol_hyperparameter(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path)
    raw["search"]["space"] = {"lrr": {"type": "float", "low": 0.1, "high": 0.2}}
    assert "did you mean 'lr'" in _error(raw)


def test_duplicate_labels_rejected(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, models=["simple_cnn", "simple_cnn"])
    assert "appear twice" in _error(raw)


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


def test_cli_config_error_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tiny_config(tmp_path)
    raw["serch"] = {}
    path = write_config(tmp_path / "bad.yaml", raw)
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "did you mean 'search'" in err and "Traceback" not in err


def test_cli_unknown_model_exits_2_with_close_match(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "exp.yaml", tiny_config(fake_kermany, models=["resnt18"]))
    assert main(["run", str(path)]) == 2
    assert "Did you mean: resnet18" in capsys.readouterr().err
