"""Nothing silently wrong: one regression test per quiet failure found by the abuse pass.

Each test writes its own bad files or spawns its own processes; numbers in comments are the
items of the issue "Nothing silently wrong".
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
from PIL import Image

from pneumobench.cli import main
from pneumobench.config import load_config, parse_config
from pneumobench.data import prepare_data
from pneumobench.data.decode import decode_image
from pneumobench.errors import ConfigError, DataError
from tests.conftest import ROOT, store_uri, tiny_config, write_config

# --- 1. searches never repeat themselves ---------------------------------------------------


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("lr", 1e-4, 1e-2, log=True) + trial.suggest_float("d", 0, 0.5)


def _study(url: str, seed: int = 42) -> optuna.Study:
    from pneumobench.benchmark.search import make_sampler

    config = parse_config({"name": "t", "seed": seed, "data": {"path": "x"}, "models": ["a"]})
    return optuna.create_study(
        study_name="s",
        storage=url,
        sampler=make_sampler(config),
        load_if_exists=True,
        direction="maximize",
    )


def test_resumed_and_parallel_searches_draw_new_samples_reproducibly(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # a resume: a new process (new sampler) on a study that holds two trials
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    _study(url).optimize(_objective, n_trials=2)
    _study(url).optimize(_objective, n_trials=2)
    resumed = [tuple(t.params.values()) for t in _study(url).trials]
    assert len(set(resumed)) == 4
    # two workers on one study: interleaved asks from two samplers
    url2 = f"sqlite:///{tmp_path / 'workers.db'}"
    a, b = _study(url2), _study(url2)
    for _ in range(2):
        for worker in (a, b):
            trial = worker.ask()
            worker.tell(trial, _objective(trial))
    parallel = [tuple(t.params.values()) for t in a.trials]
    assert len(set(parallel)) == 4
    # the same seed and order of trials gives the same sequence again
    url3 = f"sqlite:///{tmp_path / 'again.db'}"
    _study(url3).optimize(_objective, n_trials=2)
    _study(url3).optimize(_objective, n_trials=2)
    assert [tuple(t.params.values()) for t in _study(url3).trials] == resumed
    url4 = f"sqlite:///{tmp_path / 'other.db'}"
    _study(url4, seed=1).optimize(_objective, n_trials=1)
    assert tuple(_study(url4, seed=1).trials[0].params.values()) != resumed[0]


# --- 2. images decode faithfully ------------------------------------------------------------


def _gradient16() -> np.ndarray:
    return (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_16_bit_grey_images_are_scaled_by_bit_depth_not_clipped(
    tmp_path: Path, suffix: str
) -> None:
    pixels = _gradient16()
    path = tmp_path / f"x{suffix}"
    Image.fromarray(pixels).save(path)
    out = decode_image(path, 64)
    expected = np.round(pixels / 65535 * 255)
    assert np.abs(out.astype(float) - expected).max() <= 1
    assert out.min() == 0 and out.max() == 255 and 120 < out.mean() < 135


def test_palette_and_grey_alpha_images_keep_their_grey(tmp_path: Path) -> None:
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    Image.fromarray(grey).convert("P").save(tmp_path / "p.png")
    Image.fromarray(grey).convert("LA").save(tmp_path / "la.png")
    for name in ("p.png", "la.png"):
        assert np.abs(decode_image(tmp_path / name, 64).astype(int) - grey).max() <= 1


# --- 3. the search space and per-model overrides are validated -----------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"search": {"space": {"optimizer": {"type": "categorical", "choices": ["rmsprop"]}}}},
            "search.space.optimizer: Input should be 'adamw' or 'sgd'",
        ),
        (
            {"search": {"space": {"lr": {"type": "categorical", "choices": ["fast"]}}}},
            "search.space.lr: Input should be a valid number",
        ),
        (
            {"models": [{"name": "simple_cnn", "protocol": {"max_epochs": 0}}]},
            "models[0].protocol.max_epochs: Input should be greater than or equal to 1",
        ),
        (
            {
                "models": [
                    {
                        "name": "simple_cnn",
                        "space": {"batch_size": {"type": "int", "low": 0, "high": 8}},
                    }
                ]
            },
            "models[0].space.batch_size: Input should be greater than or equal to 1",
        ),
    ],
)
def test_sampled_and_overridden_values_must_be_valid_protocol_values(
    tmp_path: Path, change: dict, message: str
) -> None:
    raw = tiny_config(tmp_path)
    for key, value in change.items():
        raw[key] = {**raw.get(key, {}), **value} if key == "search" else value
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "exp.yaml")
    assert message in str(info.value)


# --- 4. a validation set must hold every class -----------------------------------------------


def test_a_carve_that_leaves_a_class_out_of_validation_is_an_error(fake_kermany: Path) -> None:
    normals = sorted((fake_kermany / "train" / "NORMAL").iterdir())
    for f in normals[1:]:
        f.unlink()
    for f in (fake_kermany / "val" / "NORMAL").iterdir():
        f.unlink()
    config = parse_config(tiny_config(fake_kermany))
    with pytest.raises(DataError) as info:
        prepare_data(config)
    text = str(info.value)
    assert "no normal image in val" in text and "train: 1 normal" in text
    assert "data.val_fraction" in text


def test_an_empty_official_val_class_is_fine_when_val_is_merged(fake_kermany: Path) -> None:
    for f in (fake_kermany / "val" / "NORMAL").iterdir():
        f.unlink()
    data = prepare_data(parse_config(tiny_config(fake_kermany)))  # 19. merged: no error
    assert set(data.val.labels.tolist()) == {0, 1}


# --- 5. a database server that never answers ------------------------------------------------


def test_a_storage_server_that_accepts_and_never_answers_fails_in_seconds(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])  # and never answer

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"postgresql://user@127.0.0.1:{listener.getsockname()[1]}/optuna"
    config = write_config(tmp_path / "e.yaml", tiny_config(fake_kermany))
    started = time.monotonic()
    try:
        assert main(["run", str(config), "--storage", url]) == 2
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
    assert time.monotonic() - started < 60
    assert f"cannot open the Optuna storage {url}" in capsys.readouterr().err


# --- 6. missing pretrained weights are found before any training ----------------------------


def test_missing_weights_of_a_later_model_stop_the_run_before_the_first_trial(
    tmp_path: Path,
    fake_kermany: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    raw = tiny_config(fake_kermany)
    raw["models"] = [
        "simple_cnn",
        {"name": "tv:mobilenet_v2", "pretrained": "IMAGENET1K_V1"},
        {"name": "resnet18", "pretrained": True},
    ]
    started = time.monotonic()
    assert main(["run", str(write_config(tmp_path / "e.yaml", raw))]) == 2
    assert time.monotonic() - started < 45
    err = capsys.readouterr().err
    assert "could not load pretrained weights for 'tv:mobilenet_v2'" in err
    assert not optuna.get_all_study_summaries("sqlite:///optuna.db")  # no model started


def test_timm_weights_offline_fail_in_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pneumobench.errors import ModelError
    from pneumobench.registry import create_model

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ModelError, match="could not load pretrained weights for 'timm:resnet18'"):
        create_model("resnet18", 2, pretrained=True, image_size=32)
    assert time.monotonic() - started < 20


# --- 7. two runs started together in a fresh folder ------------------------------------------

_INIT = """
import sys
from pneumobench.benchmark.coordination import Claims
from pneumobench.benchmark.search import storage_for
from pneumobench.config import parse_config
from pneumobench.tracking.store import open_experiment
config = parse_config({"name": "twins", "data": {"path": "x"}, "models": ["simple_cnn"],
    "search": {"storage": "sqlite:///optuna.db"}, "tracking": {"uri": "sqlite:///mlflow.db"}})
Claims(storage_for(config).engine)
print(open_experiment(config.name, config.tracking.uri))
"""


def test_two_runs_started_together_in_a_fresh_folder_both_start(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
    for attempt in range(2):
        folder = tmp_path / f"fresh{attempt}"
        folder.mkdir()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _INIT],
                cwd=folder,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        results = [p.communicate(timeout=180) for p in procs]
        for proc, (_, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err[-3000:]
        assert results[0][0].strip() == results[1][0].strip()  # one experiment, one id


# --- 8. stores elsewhere, unwritable folders --------------------------------------------------


def test_artifacts_go_beside_the_store_and_unwritable_folders_are_named(
    tmp_path: Path, fake_kermany: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.tracking.store import open_experiment

    stores = tmp_path / "stores"
    uri = f"sqlite:///{stores / 'mlflow.db'}"
    experiment_id = open_experiment("elsewhere", uri)
    location = mlflow.MlflowClient(uri).get_experiment(experiment_id).artifact_location
    assert location == (stores / "mlruns").as_uri()

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    raw = tiny_config(fake_kermany)
    raw["data"]["cache_dir"] = str(blocker / "cache")  # cannot be created: memory only
    data = prepare_data(parse_config(raw))
    assert any("decode cache not written" in note for note in data.notes)
    raw["search"]["checkpoint_dir"] = str(blocker / "checkpoints")
    assert main(["run", str(write_config(tmp_path / "e.yaml", raw))]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is not writable" in err and "search.checkpoint_dir" in err
    assert not Path("mlflow.db").exists()  # nothing was started


# --- 9. broken symbolic links -------------------------------------------------------------------


def test_dangling_and_looping_links_are_named_or_skipped(fake_kermany: Path) -> None:
    folder = fake_kermany / "train" / "PNEUMONIA"
    (folder / "person900_bacteria_1.jpeg").symlink_to(folder / "gone.jpeg")
    (folder / "person901_bacteria_1.jpeg").symlink_to(folder / "person901_bacteria_1.jpeg")
    raw = tiny_config(fake_kermany)
    with pytest.raises(DataError) as info:
        prepare_data(parse_config(raw))
    text = str(info.value)
    assert "person900_bacteria_1.jpeg: missing: a broken symbolic link" in text
    assert "person901_bacteria_1.jpeg: a symbolic link that loops" in text
    raw["data"]["on_bad_image"] = "skip"
    data = prepare_data(parse_config(raw))
    assert len(data.skipped) == 2


# --- 10. npz problems ---------------------------------------------------------------------------


def _npz(path: Path, **over: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1)
    arrays.update(over)
    np.savez(path, **arrays)
    return path


def _medmnist(path: Path) -> object:
    raw = tiny_config(path)
    raw["data"] = {"source": "medmnist", "path": str(path), "image_size": 28}
    return prepare_data(parse_config(raw))


def test_npz_files_are_checked_and_never_unpickled(tmp_path: Path) -> None:
    data = _medmnist(_npz(tmp_path / "my-own-name.npz"))  # any file name
    assert len(data.train) == 40
    cases = {
        "labels.npz": (dict(val_labels=np.full((10, 1), 3)), "val_labels holds [3]"),
        "shape.npz": (dict(test_images=np.zeros((10, 28), np.uint8)), "test_images must be"),
        "count.npz": (dict(train_labels=np.zeros((39, 1))), "one label per image (40)"),
    }
    for name, (over, message) in cases.items():
        with pytest.raises(DataError, match=re.escape(message)):
            _medmnist(_npz(tmp_path / name, **over))
    page = tmp_path / "page.npz"
    page.write_text("<html><body>Sign in</body></html>")
    with pytest.raises(DataError) as info:
        _medmnist(page)
    assert "not a readable MedMNIST .npz file" in str(info.value)
    assert "allow_pickle" not in str(info.value)


# --- 11-13, 15, 18. configs and file names ------------------------------------------------------


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


def test_non_utf8_file_names_and_empty_files_are_named(fake_kermany: Path) -> None:
    folder = fake_kermany / "train" / "NORMAL"
    name = os.fsdecode(b"IM-0777-0001-\xff.jpeg")
    (folder / name).write_bytes((next(folder.glob("*.jpeg"))).read_bytes())
    with pytest.raises(DataError, match="not valid UTF-8"):
        prepare_data(parse_config(tiny_config(fake_kermany)))
    (folder / name).unlink()
    (folder / "IM-0778-0001.jpeg").write_bytes(b"")
    with pytest.raises(DataError, match=r"IM-0778-0001.jpeg: empty file \(0 bytes\)"):
        prepare_data(parse_config(tiny_config(fake_kermany)))


# --- 14. Ctrl-C during seed repeats ------------------------------------------------------------


def test_interrupted_seed_repeats_resume_without_duplicate_runs(
    tmp_path: Path, fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pneumobench.benchmark.run import final

    raw = tiny_config(fake_kermany, models=["simple_cnn"])
    raw["search"]["n_trials"] = 1
    raw["protocol"]["max_epochs"] = 1
    raw["evaluation"] = {"bootstrap_resamples": 100, "seeds": [7, 8, 9]}
    config = write_config(tmp_path / "e.yaml", raw)
    real_fit, calls = final.fit, {"n": 0}

    def fit_then_stop(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:  # seed 8 is done, seed 9 is cut off
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(final, "fit", fit_then_stop)
    assert main(["run", str(config)]) == 130
    monkeypatch.setattr(final, "fit", real_fit)
    assert main(["run", str(config)]) == 0
    client = mlflow.MlflowClient(store_uri())
    exp = client.get_experiment_by_name("tiny")
    repeats = client.search_runs([exp.experiment_id], "tags.`pneumobench.role` = 'repeat'")
    assert sorted(r.info.run_name for r in repeats) == ["simple_cnn/seed-8", "simple_cnn/seed-9"]
    assert {r.info.status for r in repeats} == {"FINISHED"}
    models = client.search_runs([exp.experiment_id], "tags.`pneumobench.role` = 'model'")
    by_label = {r.data.tags["pneumobench.label"]: r for r in models}
    assert set(by_label) == {"simple_cnn", "simple_cnn-seed-ensemble"}
    assert by_label["simple_cnn"].data.metrics["n_seeds"] == 3
    # the seed ensemble is built once every seed is in, from the resumed and the new repeats
    members = by_label["simple_cnn-seed-ensemble"].data.tags["pneumobench.ensemble_members"]
    assert members == "simple_cnn/seed-7,simple_cnn/seed-8,simple_cnn/seed-9"


# --- 17. empty results ---------------------------------------------------------------------------


def test_empty_results_say_so_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumobench.tracking.store import open_experiment

    open_experiment("empty", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["leaderboard", "--experiment", "empty", "--format", "json"]) == 1
    assert "no model of experiment 'empty' has a final evaluation" in capsys.readouterr().err
    assert main(["report", "--experiment", "empty", "--out", "r.html", "--no-log"]) == 1
    assert not Path("r.html").exists()
    assert main(["models", "zzz*"]) == 1
    assert "no registry entry matches 'zzz*'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["leaderboard", "--experiment", "empty", "--resamples", "-5"])
    assert info.value.code == 2
    assert json.loads("[]") == []


def test_leaderboard_and_report_judge_with_the_configs_resamples_and_alpha(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_kermany: Path
) -> None:
    """The report once bootstrapped 1000 times where the leaderboard (and the run's own table)
    bootstrapped 2000, and ignored the config's alpha: on the default benchmark the two put
    ensemble-top3 in different groups (Holm p 0.056 against 0.032). Both now read
    evaluation.bootstrap_resamples and evaluation.alpha; a flag still wins."""
    import types

    import pneumobench.benchmark.leaderboard as leaderboard
    import pneumobench.benchmark.report as report

    raw = tiny_config(fake_kermany)
    raw["evaluation"] = {"bootstrap_resamples": 300, "alpha": 0.1}
    config = write_config(tmp_path / "e.yaml", raw)
    seen: list[tuple[str, int, float]] = []

    def fake_leaderboard(name, metric, uri, *, n_resamples, alpha, **_):
        seen.append(("leaderboard", n_resamples, alpha))
        return []

    def fake_report(name, uri, storage, metric, *, n_resamples, alpha):
        seen.append(("report", n_resamples, alpha))
        return types.SimpleNamespace(models=[])

    monkeypatch.setattr(leaderboard, "load_leaderboard", fake_leaderboard)
    monkeypatch.setattr(report, "build_report", fake_report)
    monkeypatch.chdir(tmp_path)
    main(["leaderboard", "--config", str(config)])
    main(["report", "--config", str(config), "--out", "r.html", "--no-log"])
    main(["report", "--config", str(config), "--out", "r.html", "--no-log", "--resamples", "500"])
    main(["leaderboard", "--experiment", "x", "--tracking-uri", "sqlite:///m.db"])  # no config
    assert seen == [
        ("leaderboard", 300, 0.1),
        ("report", 300, 0.1),
        ("report", 500, 0.1),
        ("leaderboard", 2000, 0.05),
    ]


# --- resizing a non-square X-ray ----------------------------------------------------------------


def test_resize_modes_squash_crop_or_pad_a_wide_image(tmp_path: Path) -> None:
    wide = np.zeros((40, 80), dtype=np.uint8)
    wide[:, :20] = 255  # a white left quarter
    path = tmp_path / "wide.png"
    Image.fromarray(wide).save(path)
    squash = decode_image(path, 40, "squash")
    crop = decode_image(path, 40, "center_crop")
    pad = decode_image(path, 40, "pad")
    assert squash[:, :8].mean() > 250 and squash[:, 12:].mean() < 5  # the quarter is kept, thin
    assert crop.max() == 0  # the central square holds no white
    assert pad[:8].max() == 0 and pad[12:28, :8].mean() > 250  # black borders, white kept
