"""Small text helpers every layer shares: "did you mean", file-safe names, Markdown tables."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence


def close_matches(
    word: str, options: Iterable[object], n: int = 3, cutoff: float = 0.6
) -> list[str]:
    """The options that look most like ``word`` (difflib's ratio), best first."""
    return difflib.get_close_matches(str(word), [str(o) for o in options], n=n, cutoff=cutoff)


def did_you_mean(word: str, options: Iterable[object], prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the closest option, or an empty string when none is close."""
    close = close_matches(word, options, n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def safe_name(name: str) -> str:
    """A label as a file or folder name: anything but letters, digits, ``_.-`` becomes ``_``,
    and a name of dots only (``.``, ``..``) becomes underscores: every file-name part derived
    from a name or label stays inside its folder."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return "_" * len(safe) if not safe.strip(".") else safe


_SECRET_IN_URL = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<secret>[^@/\s]+)@")


def redact(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password masked (``***``): for
    anything printed or logged that may hold a database or server URL."""
    return _SECRET_IN_URL.sub(lambda m: f"{m.group('head')}:***@", text)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; ``|`` inside cells is escaped."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def command() -> str:
    """How the user runs pneumobench from this shell: ``uv run pneumobench`` when this process
    was started by ``uv run`` (a fresh clone has no ``pneumobench`` on its PATH), else
    ``pneumobench``. Every command pneumobench prints for the user to type starts with it."""
    import os

    return "uv run pneumobench" if os.environ.get("UV_RUN_RECURSION_DEPTH") else "pneumobench"
