"""The building blocks every config section shares: strict models, one-of checks, store URLs,
and the plain tables other stages read (data sources and the tasks they serve, class names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from pneumobench.text import did_you_mean

DATA_ROOT_ENV = "PNEUMOBENCH_DATA_ROOT"
LABEL_FORBIDDEN = "'\"`\\"
TRACKING_SCHEMES = ("http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks")
STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_STORAGE_URL = "sqlite:///optuna.db"

# Data sources by name (``data.source``) and the tasks each can serve. The source's code lives in
# ``pneumobench/data/sources/<name>.py``; this table is what the config checks names against.
SOURCE_TASKS: dict[str, tuple[str, ...]] = {
    "folder": ("binary", "multiclass"),
    "medmnist": ("binary",),
}
BINARY_CLASSES = ("normal", "pneumonia")
MULTICLASS_CLASSES = ("normal", "bacteria", "virus")


def class_names_for(task: str) -> tuple[str, ...]:
    """Class names by label index: normal is always 0, so ``label != 0`` is any pneumonia."""
    return MULTICLASS_CLASSES if task == "multiclass" else BINARY_CLASSES


def one_of(value: str, options: Any, what: str) -> str:
    """``value`` if it is one of ``options``, else an error with the closest and all options."""
    if value not in options:
        raise ValueError(
            f"unknown {what} '{value}'{did_you_mean(value, options)}; "
            f"choose one of {', '.join(options)}"
        )
    return value


class StrictModel(BaseModel):
    """Unknown keys are errors, and assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def check_store_url(url: str, schemes: tuple[str, ...], what: str) -> str:
    """A database or tracking URL of a scheme the store supports; SQLite with three slashes."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        if url.startswith("sqlite:"):
            raise ValueError(
                f"'{url}' is not a SQLite URL: write sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (three or four slashes)"
            )
        if what.startswith("MLflow"):  # a plain folder is an MLflow file store
            return url
    base = scheme.split("+")[0]
    if not sep or base not in schemes:
        raise ValueError(
            f"'{url}' cannot be used as the {what}: the URL's scheme must be one of "
            f"{', '.join(schemes)} (e.g. sqlite:///{'mlflow' if what.startswith('MLflow') else 'optuna'}"
            ".db)"
        )
    if base == "sqlite" and not rest.startswith("/"):
        raise ValueError(f"'{url}': a SQLite URL has three slashes, e.g. sqlite:///mlflow.db")
    return url
