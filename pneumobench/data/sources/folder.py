"""The Kaggle / Mendeley Kermany layout: ``train/ [val/] test/`` with NORMAL and PNEUMONIA folders."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pneumobench.data.cache import cache_key, cached_array
from pneumobench.data.decode import decode_many, unreadable_error
from pneumobench.data.labels import patient_id, pneumonia_subtype
from pneumobench.data.records import ImageRecord, records_digest
from pneumobench.data.sources.base import (
    DataSource,
    SourceImages,
    SourceRequest,
    cache_note,
    limit_per_class,
)
from pneumobench.errors import DataError

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".dcm"}
LITTER_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
CLASS_FOLDERS = {"normal", "pneumonia"}
SPLITS = ("train", "val", "test")


def is_litter(path: Path) -> bool:
    """System files that real downloads carry and nobody means as data."""
    return (
        path.name.lower() in LITTER_NAMES
        or path.name.startswith("._")
        or any(part == "__MACOSX" for part in path.parts)
    )


def _subdirs(folder: Path) -> dict[str, Path]:
    return {p.name.lower(): p for p in folder.iterdir() if p.is_dir() and not is_litter(p)}


class FolderSource(DataSource):
    """Image files in the Kermany layout; patient ids and subtypes from the file names."""

    name: ClassVar[str] = "folder"

    def load(self, request: SourceRequest) -> SourceImages:
        """Scan, decode once (cached), and leave out or stop on unreadable files."""
        root, size = request.root, request.image_size
        records = scan_folder(root, request.task)
        records = [
            records[i] for i in limit_per_class(records, request.limit_per_class, request.seed)
        ]
        paths = [root / r.key for r in records]
        fingerprint = records_digest(records, "|".join(_size_and_mtime(p) for p in paths))
        if request.resize != "squash":  # squashed caches keep their earlier keys
            fingerprint += f"|{request.resize}"
        images, decoded = cached_array(
            cache_key(fingerprint, size),
            request.cache_dir,
            lambda: decode_many(paths, size, resize=request.resize),
        )
        bad = [(int(i), str(reason)) for i, reason in decoded.get("bad", [])]
        if bad and request.on_bad_image == "error":
            raise unreadable_error([f"{paths[i]}: {reason}" for i, reason in bad])
        out = SourceImages(records, images, content_digests=list(decoded.get("sha1", [])))
        out.notes += cache_note(decoded)
        out.excluded = {i for i, _ in bad}
        out.skipped = [f"{records[i].key}: {reason}" for i, reason in bad]
        if bad:
            out.notes.append(f"{len(bad)} unreadable image(s) left out (data.on_bad_image: skip)")
        return out


def _size_and_mtime(path: Path) -> str:
    """What tells a changed file; a broken link has none (and fails decoding, named)."""
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def scan_folder(root: Path, task: str) -> list[ImageRecord]:
    """One record per image file under ``root``; every problem found is named in one DataError."""
    records, problems = survey_folder(root, task)
    if problems:
        shown = problems[:20] + (
            [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        )
        raise DataError("the data folder has problems:\n  - " + "\n  - ".join(shown))
    return records


def survey_folder(root: Path, task: str) -> tuple[list[ImageRecord], list[str]]:
    """The records of every usable image file and the problems found on the way (files that are
    not images, unknown class folders, ...): what ``scan_folder`` refuses and ``data check``
    lists. A root that is not a Kermany folder at all is a DataError."""
    if not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist. Point data.path (or $PNEUMOBENCH_DATA_ROOT) at the "
            "folder holding train/ and test/ (the Kaggle 'chest_xray' folder)."
        )
    splits = _subdirs(root)
    missing = [s for s in ("train", "test") if s not in splits]
    if missing:
        raise DataError(
            f"{root}: missing split folder(s) {', '.join(missing)}; expected train/, test/ and "
            f"optionally val/, found: {', '.join(sorted(splits)) or 'nothing'}"
        )
    records: list[ImageRecord] = []
    problems: list[str] = []
    for split in SPLITS:
        if split not in splits:
            continue
        classes = _subdirs(splits[split])
        unknown = sorted(set(classes) - CLASS_FOLDERS)
        if unknown:
            problems.append(
                f"{splits[split]}: unknown class folder(s) {', '.join(unknown)}; expected NORMAL and "
                "PNEUMONIA (any case). Move them out of the data folder."
            )
        for cls in sorted(CLASS_FOLDERS):
            if cls not in classes:
                problems.append(f"{splits[split]}: no {cls.upper()} folder")
                continue
            found = _scan_class(root, classes[cls], split, cls, task, problems)
            if not found and split != "val":  # an empty official val only matters if kept:
                problems.append(f"{classes[cls]}: class folder holds no images")  # see prepare
            records.extend(found)
    return records, problems


def _scan_class(
    root: Path, folder: Path, split: str, cls: str, task: str, problems: list[str]
) -> list[ImageRecord]:
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_dir() or is_litter(path):
            continue
        if not _utf8(path.name):
            problems.append(
                f"{path.parent / ascii(path.name)}: the file name is not valid UTF-8 (it cannot be "
                "logged or shown); rename the file"
            )
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(
                f"{path}: not an image (.jpeg/.jpg/.png/.dcm); move it out of the data folder"
            )
            continue
        rel = path.relative_to(root).as_posix()
        label = _label(cls, path.name, task)
        if label is None:
            problems.append(
                f"{path}: cannot tell bacterial from viral pneumonia: the file name contains neither "
                "'bacteria' nor 'virus' (needed for task: multiclass)"
            )
            continue
        out.append(ImageRecord(rel, split, label, patient_id(path.name) or f"file:{rel}"))
    return out


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as surrogate escapes
        return False
    return True


def _label(cls: str, filename: str, task: str) -> int | None:
    if cls == "normal":
        return 0
    if task == "binary":
        return 1
    subtype = pneumonia_subtype(filename)
    return None if subtype is None else (1 if subtype == "bacteria" else 2)
