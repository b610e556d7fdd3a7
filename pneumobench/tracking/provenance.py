"""What produced a number: the code's commit and the versions of the libraries that change it."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

VERSIONED_LIBRARIES = ("torch", "torchvision", "timm", "mlflow", "optuna", "scikit-learn", "numpy")


def git_commit() -> str:
    """The short commit of the pneumobench checkout (``-dirty`` with local changes); else
    ``$PNEUMOBENCH_GIT_COMMIT`` or ``unknown`` (an installed package has no git history)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            cwd=here,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=here,
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("PNEUMOBENCH_GIT_COMMIT", "unknown")


def library_versions() -> str:
    """``python 3.11.7, torch 2.x, ...``: Python and the libraries whose versions change results."""
    return ", ".join(
        [f"python {platform.python_version()}", *(f"{n} {version(n)}" for n in VERSIONED_LIBRARIES)]
    )


def redacted_url(url: str) -> str:
    """A database URL without its password (``postgresql://user:***@host/db``): safe to log."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a database URL: nothing to hide
        return url
    return parsed.render_as_string(hide_password=True)
