"""A lock file for work that two processes must not do at once on one machine (creating the
tables of a fresh SQLite store: two runs started together in a new folder race on migrations)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for other URLs and in-memory databases."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or ":memory:" in url:
        return None
    return Path(url[len(prefix) :].split("?")[0])


@contextlib.contextmanager
def initializing(url: str) -> Iterator[None]:
    """Hold ``<database>.init.lock`` while a SQLite store at ``url`` is opened (others wait);
    nothing for other databases, which serialize their own schema changes."""
    path = sqlite_file(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".init.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
