"""What a Kermany file name says: the patient, and bacterial versus viral pneumonia."""

from __future__ import annotations

import re
from pathlib import PurePath

_PERSON = re.compile(r"^(person\d+)_(?:(bacteria|virus)_)?", re.IGNORECASE)
_NORMAL = re.compile(r"^((?:NORMAL\d*-)?IM-\d+)", re.IGNORECASE)


def patient_id(filename: str) -> str | None:
    """``person12_bacteria_45.jpeg`` -> ``person12``; ``NORMAL2-IM-1234-0001.jpeg`` ->
    ``NORMAL2-IM-1234``; ``IM-1234-0001.jpeg`` -> ``IM-1234``.

    The file names do not settle whether ``personN`` alone is the child or whether each
    pneumonia subtype numbers its children separately (170 ``personN`` numbers occur in both the
    bacterial and the viral files; at low N the two counters interleave). Grouping by
    ``personN`` alone is safe under both readings: every file of a child stays on one side of a
    split, at worst with another child's. ``IM-n`` and ``NORMAL2-IM-n`` are different children.
    None when the name follows neither convention (the file is then its own patient).
    """
    name = PurePath(filename).name
    person = _PERSON.match(name)
    if person:
        return person.group(1)
    normal = _NORMAL.match(name)
    return normal.group(1) if normal else None


def pneumonia_subtype(filename: str) -> str | None:
    """``bacteria`` or ``virus`` from the file name, None when the name does not say."""
    name = PurePath(filename).name.lower()
    has_bacteria, has_virus = "bacteria" in name, "virus" in name
    if has_bacteria == has_virus:
        return None
    return "bacteria" if has_bacteria else "virus"
