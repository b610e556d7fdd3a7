"""Shared fixtures: tiny fake data sets written by the tests, and the real shared data if present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("PNEUMOBENCH_DATA_ROOT", ROOT.parent / "shared" / "data"))
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test in its own working folder: its own mlflow.db, optuna.db and caches."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("PNEUMOBENCH_DATA_ROOT", raising=False)
    from pneumobench.data.cache import clear_memory_cache

    clear_memory_cache()


def _image(rng: np.random.Generator, sick: bool, size: tuple[int, int]) -> np.ndarray:
    """Noise with a bright blob for pneumonia: learnable in a couple of epochs at 32 px."""
    w, h = size
    img = rng.normal(90, 20, (h, w))
    if sick:
        cy, cx = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4)
        yy, xx = np.ogrid[:h, :w]
        img += 120 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (min(h, w) / 6) ** 2))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_fake_kermany(
    root: Path, patients_per_class: int = 12, images_per_patient: int = 2, seed: int = 0
) -> Path:
    """A Kaggle-layout folder: grey and RGB, PNG and JPEG, odd sizes, several images per patient."""
    rng = np.random.default_rng(seed)
    n = 0
    for split, n_patients in (
        ("train", patients_per_class),
        ("val", 2),
        ("test", patients_per_class // 2),
    ):
        for cls in ("NORMAL", "PNEUMONIA"):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for p in range(n_patients):
                pid = 1000 * (split == "test") + 100 * (split == "val") + p
                for i in range(images_per_patient):
                    n += 1
                    size = (72 + 8 * (n % 3), 64 + 4 * (n % 2))
                    pixels = _image(rng, cls == "PNEUMONIA", size)
                    if cls == "NORMAL":
                        name = f"IM-{pid:04d}-{i + 1:04d}"
                    else:
                        kind = "bacteria" if p % 2 == 0 else "virus"
                        name = f"person{pid}_{kind}_{n}"
                    img = Image.fromarray(pixels)
                    if n % 2:
                        img = img.convert("RGB")
                    ext = ".png" if n % 3 == 0 else ".jpeg"
                    img.save(folder / f"{name}{ext}")
    return root


@pytest.fixture
def fake_kermany(tmp_path: Path) -> Path:
    return write_fake_kermany(tmp_path / "chest_xray")


def tiny_config(data_path: Path, **over: object) -> dict:
    """A config dict for 32 px, 2-trial, 2-epoch runs of small models."""
    config: dict = {
        "name": "tiny",
        "seed": 7,
        "task": "binary",
        "device": "cpu",
        "data": {
            "source": "folder",
            "path": str(data_path),
            "image_size": 32,
            "val_fraction": 0.25,
        },
        "protocol": {"max_epochs": 2, "patience": 2, "batch_size": 16, "freeze_epochs": 1},
        "search": {"n_trials": 2, "pruner": "none", "storage": "sqlite:///optuna.db"},
        "evaluation": {"bootstrap_resamples": 200},
        "models": [
            "simple_cnn",
            {"name": "resnet18", "pretrained": False, "label": "resnet18-scratch"},
        ],
    }
    config.update(over)
    return config


def write_config(path: Path, config: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


requires_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "pneumoniamnist.npz").is_file(), reason="../shared/data is not present"
)
requires_shared_weights = pytest.mark.skipif(
    not (SHARED_WEIGHTS / "hub" / "checkpoints").is_dir(), reason="../shared/weights is not present"
)


def store_uri() -> str:
    """This test's MLflow store (absolute: MLflow caches stores by URI across tests)."""
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def storage_uri() -> str:
    return f"sqlite:///{Path.cwd() / 'optuna.db'}"


@pytest.fixture(scope="session")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run of two models, trained once per test session, for the tests that only read
    it (registry versions, predict, export, serving, the report's storage lookup)."""
    from pneumobench.commands.main import main

    folder = tmp_path_factory.mktemp("served")
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        data = write_fake_kermany(folder / "chest_xray", patients_per_class=10)
        raw = tiny_config(data)
        raw["search"]["n_trials"] = 1
        config = write_config(folder / "experiments.yaml", raw)
        assert main(["run", str(config), "--profile-out", "profile.json"]) == 0
    finally:
        os.chdir(cwd)
    return folder


@pytest.fixture
def in_run_folder(finished: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder is the finished run's, its store MLflow's default."""
    import mlflow

    monkeypatch.chdir(finished)
    mlflow.set_tracking_uri(f"sqlite:///{finished / 'mlflow.db'}")
    return finished
