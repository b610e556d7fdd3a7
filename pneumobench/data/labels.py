"""What a Kermany file name says: the patient, and bacterial versus viral pneumonia."""

from __future__ import annotations

import re
from pathlib import PurePath

_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_NORMAL = re.compile(r"^((?:NORMAL\d*-)?IM-\d+)", re.IGNORECASE)


def patient_id(filename: str) -> str | None:
    """``person12_bacteria_45.jpeg`` -> ``person12``; ``NORMAL2-IM-1234-0001.jpeg`` -> ``NORMAL2-IM-1234``.

    None when the name follows neither convention (the caller then treats the file as its own patient).
    """
    name = PurePath(filename).name
    match = _PERSON.match(name) or _NORMAL.match(name)
    return match.group(1) if match else None


def pneumonia_subtype(filename: str) -> str | None:
    """``bacteria`` or ``virus`` from the file name, None when the name does not say."""
    name = PurePath(filename).name.lower()
    has_bacteria, has_virus = "bacteria" in name, "virus" in name
    if has_bacteria == has_virus:
        return None
    return "bacteria" if has_bacteria else "virus"


BINARY_CLASSES = ("normal", "pneumonia")
MULTICLASS_CLASSES = ("normal", "bacteria", "virus")


def class_names_for(task: str) -> tuple[str, ...]:
    """Class names by label index: normal is always 0, so ``label != 0`` is any pneumonia."""
    return MULTICLASS_CLASSES if task == "multiclass" else BINARY_CLASSES
