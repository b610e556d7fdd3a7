"""The report's text sections, read from the logged runs: the data split, the leak check,
the environment, the class names, and where each model's Optuna study lives."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pneumobench import __version__
from pneumobench.config.fields import class_names_for
from pneumobench.tracking import schema as S

SPLITS = ("train", "val", "test")


def logged_storage(run: Any, notes: list[str]) -> str | None:
    """The Optuna storage a model's run recorded (``--storage`` overrides it); None, with a
    note, when it cannot be opened from here (a SQLite file elsewhere, a redacted password)."""
    url = run.data.tags.get(S.OPTUNA_STORAGE)
    label = run.data.tags.get(S.LABEL, run.info.run_name)
    if not url:
        notes.append(f"{label}: no Optuna storage recorded; pass --storage for its history")
        return None
    if "***" in url:
        notes.append(f"{label}: its storage {url} needs a password: pass --storage")
        return None
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        notes.append(f"{label}: its storage {url} is not on this machine: pass --storage")
        return None
    return url


def _first_trained(runs: dict[str, Any]) -> Any | None:
    """The best-ranked run of a trained model: it logged the data summary, the leak check and
    the provenance every model of the experiment shares (an ensemble row trained nothing)."""
    for run in runs.values():
        if run.data.tags.get(S.FAMILY) != S.FAMILY_ENSEMBLE:
            return run
    return None


def leak_note(runs: dict[str, Any]) -> str:
    """What the leak check before training found (from the first model's logged params)."""
    first = _first_trained(runs)
    if first is None:
        return ""
    params = first.data.params
    near_duplicates = params.get(S.PARAM_LEAK_NEAR_DUPLICATES)
    if near_duplicates is None:
        return "Leak check: not recorded for these runs."
    patients = (
        f"{params.get(S.PARAM_LEAK_SHARED_PATIENTS)} patient(s) in more than one split"
        if params.get(S.PARAM_PATIENTS_CHECKED) == "True"
        else "patients not checked (this data has no patient ids; patient counts are unknown)"
    )
    return (
        f"Leak check before training: {patients}; {near_duplicates} near-duplicate image pair(s) "
        f"across splits; {params.get(S.PARAM_LEAK_IDENTICAL_GROUPS)} group(s) of byte-identical "
        f"files across splits. Findings are listed in each model run's {S.LEAKS}."
    )


def data_rows(runs: dict[str, Any]) -> list[dict[str, str]]:
    """One row per split from the first model's logged data summary (all share the split)."""
    first = _first_trained(runs)
    if first is None:
        return []
    params, tags = first.data.params, first.data.tags
    rows = []
    for split in SPLITS:
        count = S.split_count_param(split)
        if count not in params:
            continue
        classes = {
            k.removeprefix(f"{count}_"): v
            for k, v in sorted(params.items())
            if k.startswith(f"{count}_")
        }
        rows.append(
            {
                "split": split,
                "images": params[count],
                "patients": params.get(S.split_patients_param(split), "unknown (no patient ids)"),
                **classes,
                "image size": f"{tags.get(S.IMAGE_SIZE, '?')} px",
                "source": tags.get(S.DATA_SOURCE, ""),
            }
        )
    return rows


def environment(runs: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    first = _first_trained(runs)
    if first is not None:
        tags = first.data.tags
        for key in S.PROVENANCE_TAGS:
            if key in tags:
                env[f"runs: {key.replace('_', ' ')}"] = tags[key]
    env["report made"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    env["report made with"] = (
        f"pneumobench {__version__}, python {platform.python_version()}, "
        + ", ".join(f"{n} {version(n)}" for n in ("torch", "mlflow", "optuna"))
    )
    return env


def class_names(runs: dict[str, Any], predictions: dict) -> list[str]:
    for run in runs.values():
        names = run.data.tags.get(S.CLASS_NAMES)
        if names:
            return names.split(",")
    k = next(iter(predictions.values()))[1].shape[1] if predictions else 2
    return list(class_names_for("binary" if k == 2 else "multiclass"))
