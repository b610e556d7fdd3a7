"""Tests of pneumobench/commands/main.py: user errors exit 2 with one readable line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pneumobench.commands.main import main
from tests.conftest import tiny_config, write_config


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
    from pneumobench.commands.main import main

    culprit = breaker(fake_kermany)
    config = write_config(tmp_path / "exp.yaml", tiny_config(fake_kermany))
    assert main(["run", str(config)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert culprit in err and "Traceback" not in err


def test_unreachable_tracking_and_storage_exit_2(
    tmp_path: Path,
    fake_kermany: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pneumobench.commands.main import main

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    config = write_config(tmp_path / "exp.yaml", tiny_config(fake_kermany))
    assert main(["run", str(config), "--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert "cannot reach the MLflow tracking store http://127.0.0.1:9" in capsys.readouterr().err
    assert main(["run", str(config), "--storage", "nosuchdb://x/y"]) == 2
    assert "'nosuchdb://x/y' cannot be used as the Optuna storage" in capsys.readouterr().err


def test_an_unknown_library_model_names_the_file_and_key_and_creates_nothing(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tiny_config(fake_kermany, models=["simple_cnn", "timm:not_a_model"])
    config = write_config(tmp_path / "e.yaml", raw)
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(config.resolve()) in err and "models[1] (timm:not_a_model)" in err
    assert not (tmp_path / ".pneumobench").exists()


def test_the_help_imports_neither_torch_nor_mlflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom pneumobench.commands.main import _parser\n_parser()\n"
        "print(sorted(m for m in ('torch', 'mlflow', 'sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["models"], ["models", "resnet*"], ["data", "check", "{npz}"]],
    ids=["help", "models", "models-pattern", "data-check"],
)
def test_quick_commands_import_neither_torch_nor_mlflow(argv: list[str], tmp_path: Path) -> None:
    """What ``python -X importtime`` shows: these commands answer without torch or mlflow."""
    import subprocess
    import sys

    import numpy as np

    npz = tmp_path / "tiny.npz"
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 20), ("val", 6), ("test", 6)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(-1, 1)
    np.savez(npz, **arrays)
    args = [a.replace("{npz}", str(npz)) for a in argv]
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pneumobench", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode in (0, 1), out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "mlflow"}, args


def test_printed_commands_and_errors_never_show_a_password() -> None:
    from pneumobench.commands.run import PASSWORD_ENV, _secret_from_env
    from pneumobench.text import redact

    url = "postgresql://user:s3cret@db.example:5432/mlflow"
    assert redact(f"cannot open {url}: refused") == (
        "cannot open postgresql://user:***@db.example:5432/mlflow: refused"
    )
    shown = _secret_from_env(url)
    assert "s3cret" not in shown and f"${{{PASSWORD_ENV}}}" in shown
    assert _secret_from_env("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
