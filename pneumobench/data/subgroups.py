"""The user's subgroup file (``data.subgroups: file.csv``): image -> group columns.

One row per image; the first column that is ``path`` or ``id`` names the image, every other
column is a grouping (``age_band``, ``sex``, ``site``, ``device``, ...). A ``path`` is matched
against the test image's path relative to the data folder (``test/NORMAL/IM-0001-0001.jpeg``)
and, failing that, against its file name; an ``id`` against the file name without its suffix.
An empty cell puts the image in no group of that column. Rows naming images outside the test
split are allowed (one file can describe the whole data set) and counted, not used.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pneumobench.errors import ConfigError

KEY_COLUMNS = ("path", "id")
MAX_GROUPS = 50  # more distinct values than this in a column is an identifier, not a subgroup


@dataclass(frozen=True)
class SubgroupFile:
    """A checked subgroup CSV: its columns and each named image's groups."""

    path: Path
    key_column: str
    columns: tuple[str, ...]
    rows: dict[str, dict[str, str]]  # image key as written -> column -> group ('' = none)

    def groupings(self, test_keys: list[str]) -> tuple[dict[str, list[str | None]], int]:
        """Per column the group of each test image (None: no group), and how many test images
        the file does not name."""
        by_name = {_normal(k): k for k in self.rows}
        found = [self._lookup(key, by_name) for key in test_keys]
        groupings = {
            column: [(row.get(column) or None) if row else None for row in found]
            for column in self.columns
        }
        return groupings, sum(row is None for row in found)

    def _lookup(self, key: str, by_name: dict[str, str]) -> dict[str, str] | None:
        pure = PurePosixPath(key)
        candidates = (key, pure.name) if self.key_column == "path" else (pure.stem, pure.name)
        for candidate in candidates:
            written = by_name.get(_normal(candidate))
            if written is not None:
                return self.rows[written]
        return None


def _normal(key: str) -> str:
    return key.strip().replace("\\", "/").lower()


def read_subgroups(path: Path) -> SubgroupFile:
    """Read and check the file; a ConfigError names the file, the line and what to change."""
    where = f"data.subgroups ({path})"
    if not path.is_file():
        raise ConfigError(f"{where}: file not found; give a CSV with a path (or id) column")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot be read as UTF-8 text ({exc})") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    if not header or header[0].lower() not in KEY_COLUMNS:
        raise ConfigError(
            f"{where}, line 1: the first column must be 'path' or 'id' (found "
            f"{header[0] if header else 'an empty file'!r}), followed by group columns such as "
            "age_band, sex, site"
        )
    columns = tuple(header[1:])
    if not columns or any(not c for c in columns) or len(set(columns)) != len(columns):
        raise ConfigError(
            f"{where}, line 1: give one or more uniquely named group columns after "
            f"'{header[0]}' (found {header[1:]})"
        )
    rows: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ConfigError(
                f"{where}, line {line}: {len(cells)} cell(s), the header has {len(header)}; "
                "quote cells that contain commas"
            )
        key = cells[0].strip()
        if not key:
            raise ConfigError(f"{where}, line {line}: the {header[0]} cell is empty")
        if _normal(key) in seen:
            raise ConfigError(f"{where}, line {line}: image {key!r} is listed twice")
        seen.add(_normal(key))
        rows[key] = {c: v.strip() for c, v in zip(columns, cells[1:], strict=True)}
    if not rows:
        raise ConfigError(f"{where}: no rows below the header")
    for column in columns:
        values = {r[column] for r in rows.values()} - {""}
        if len(values) > MAX_GROUPS:
            raise ConfigError(
                f"{where}: column {column!r} has {len(values)} distinct values; a subgroup column "
                f"holds at most {MAX_GROUPS} (bin ages into bands, drop identifier columns)"
            )
    return SubgroupFile(path, header[0].lower(), columns, rows)
