"""``pneumobench data check``: look at a dataset before spending GPU hours on it.

Reads every image once, trains nothing, and reports per split (as on disk): images per class,
patients, image sizes and modes, unreadable files, layout problems (files that are not images,
unknown folders), and the leak report of ``leaks`` (the same checks a run makes on its final
splits: patients, near-duplicate and byte-identical images across splits).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumobench.config.fields import class_names_for
from pneumobench.data.decode import decode_many
from pneumobench.data.labels import pneumonia_subtype
from pneumobench.data.leaks import LeakReport, fingerprints, near_duplicates, shared_patients
from pneumobench.data.pixels import header
from pneumobench.data.records import ImageRecord
from pneumobench.errors import DataError

SPLITS = ("train", "val", "test")
FINGERPRINT_SIZE = 64  # px: decoded size for the near-duplicate check


@dataclass
class SplitFacts:
    """What one split on disk holds."""

    images: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    subtypes: dict[str, int] = field(default_factory=dict)  # bacteria / virus, folder data only
    patients: int | None = None  # None: the source has no patient ids
    sizes: Counter = field(default_factory=Counter)  # "WxH" -> images
    modes: Counter = field(default_factory=Counter)  # PIL mode -> images


@dataclass
class DatasetCheck:
    """The findings of one ``data check``; ``problems`` decides the exit code."""

    root: Path
    source: str  # folder | medmnist
    splits: dict[str, SplitFacts]
    leaks: LeakReport
    unreadable: list[str] = field(default_factory=list)  # "path: reason"
    layout_problems: list[str] = field(default_factory=list)
    identical_within_splits: int = 0  # groups of byte-identical files inside one split

    @property
    def problems(self) -> list[str]:
        """Everything that should be fixed before training (empty: clean)."""
        out = [f"unreadable: {u}" for u in self.unreadable] + list(self.layout_problems)
        out += [f"leak: {line}" for line in self.leaks.to_csv().splitlines()[1:]]
        return out

    def to_dict(self) -> dict:
        """A JSON-ready view (``--format json``)."""
        return {
            "root": str(self.root),
            "source": self.source,
            "splits": {
                name: {
                    "images": f.images,
                    "per_class": f.per_class,
                    "subtypes": f.subtypes,
                    "patients": f.patients,
                    "sizes": dict(f.sizes.most_common()),
                    "modes": dict(f.modes.most_common()),
                }
                for name, f in self.splits.items()
            },
            "unreadable": self.unreadable,
            "layout_problems": self.layout_problems,
            "leaks": {
                **self.leaks.counts(),
                "patients_checked": self.leaks.patients_checked,
                "findings": self.leaks.to_csv().splitlines()[1:],
            },
            "identical_groups_within_splits": self.identical_within_splits,
            "clean": not self.problems,
        }

    def to_json(self) -> str:
        """``to_dict`` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)


def check_path(path: Path, source: str | None = None) -> DatasetCheck:
    """Check a Kermany-layout folder or a MedMNIST ``.npz`` (``source`` None: told by the path)."""
    if source is None:
        source = "medmnist" if path.suffix == ".npz" else "folder"
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if source == "medmnist":
        return check_medmnist(path)
    return check_folder(path)


def check_folder(root: Path) -> DatasetCheck:
    """Every image under ``root`` (``train/ [val/] test/`` with NORMAL and PNEUMONIA) read once."""
    from pneumobench.data.sources.folder import survey_folder

    records, layout_problems = survey_folder(root, "binary")
    paths = [root / r.key for r in records]
    images, decoded = decode_many(paths, FINGERPRINT_SIZE)
    bad = dict(decoded["bad"])
    facts = _split_facts(records, bad, has_patients=True)
    for i, (record, path) in enumerate(zip(records, paths, strict=True)):
        if i in bad:
            continue
        size, mode = header(path)
        facts[record.split].sizes.update([size])
        facts[record.split].modes.update([mode])
        if record.label == 1:
            subtype = pneumonia_subtype(path.name) or "unknown"
            subs = facts[record.split].subtypes
            subs[subtype] = subs.get(subtype, 0) + 1
    check = DatasetCheck(
        root,
        "folder",
        facts,
        _leaks(records, images, bad, decoded["sha1"], patients_known=True),
        unreadable=[f"{paths[i]}: {reason}" for i, reason in sorted(bad.items())],
        layout_problems=layout_problems,
    )
    check.identical_within_splits = _identical_within(records, decoded["sha1"], bad)
    return check


def check_medmnist(path: Path) -> DatasetCheck:
    """A MedMNIST npz: counts and sizes per split, and the cross-split image leaks."""
    from pneumobench.data.sources.medmnist import load_medmnist

    file, records, images = load_medmnist(path)
    digests = [hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest() for img in images]
    facts = _split_facts(records, {}, has_patients=False)
    side = images.shape[1]
    for record in records:
        facts[record.split].sizes.update([f"{side}x{side}"])
        facts[record.split].modes.update(["L"])
    check = DatasetCheck(
        file, "medmnist", facts, _leaks(records, images, {}, digests, patients_known=False)
    )
    check.identical_within_splits = _identical_within(records, digests, {})
    return check


def _split_facts(
    records: list[ImageRecord], bad: dict[int, str], *, has_patients: bool
) -> dict[str, SplitFacts]:
    names = class_names_for("binary")
    facts: dict[str, SplitFacts] = {}
    patients: dict[str, set[str]] = {}
    for i, record in enumerate(records):
        if i in bad:
            continue
        split = facts.setdefault(record.split, SplitFacts(per_class=dict.fromkeys(names, 0)))
        split.images += 1
        split.per_class[names[record.label]] += 1
        patients.setdefault(record.split, set()).add(record.patient)
    if has_patients:
        for name, members in patients.items():
            facts[name].patients = len(members)
    return {name: facts[name] for name in SPLITS if name in facts}


def _leaks(
    records: list[ImageRecord],
    images: np.ndarray,
    bad: dict[int, str],
    digests: list[str],
    *,
    patients_known: bool,
) -> LeakReport:
    """The run's leak checks (``leaks``) on the splits as they are on disk."""
    by_split: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        if i not in bad:
            by_split.setdefault(record.split, []).append(i)
    report = LeakReport(patients_checked=patients_known)
    if patients_known:
        report.shared_patients = shared_patients(
            {s: [records[i].patient for i in idx] for s, idx in by_split.items()}
        )
    prints = {s: fingerprints(images[np.array(idx)]) for s, idx in by_split.items()}
    keys = {s: [records[i].key for i in idx] for s, idx in by_split.items()}
    report.near_duplicates = near_duplicates(prints, keys)
    groups: dict[str, list[int]] = {}
    for i, digest in enumerate(digests):
        if digest and i not in bad:
            groups.setdefault(digest, []).append(i)
    report.identical = [
        [f"{records[i].split}:{records[i].key}" for i in members]
        for members in groups.values()
        if len({records[i].split for i in members}) > 1
    ]
    return report


def _identical_within(records: list[ImageRecord], digests: list[str], bad: dict) -> int:
    """Groups of byte-identical images that stay inside one split (harmless for the verdict)."""
    groups: dict[tuple[str, str], int] = Counter(
        (records[i].split, d) for i, d in enumerate(digests) if d and i not in bad
    )
    return sum(1 for n in groups.values() if n > 1)


def render(check: DatasetCheck, leaks_csv: Path | None = None) -> list:
    """Rich renderables: the per-split table, then the findings; leaks in one line naming
    ``leaks_csv`` (written by the caller) rather than one line each."""
    from rich.table import Table

    names = class_names_for("binary")
    table = Table(title=f"data check: {check.root} ({check.source})")
    for column in ("split", "images", *names, "bacteria / virus", "patients", "sizes", "modes"):
        table.add_column(column, justify="left" if column in ("split", "sizes") else "right")
    for name, f in check.splits.items():
        sizes = ", ".join(f"{s} ×{n}" for s, n in f.sizes.most_common(3))
        if len(f.sizes) > 3:
            sizes += f" (+{len(f.sizes) - 3} more sizes)"
        table.add_row(
            name,
            str(f.images),
            *(str(f.per_class[c]) for c in names),
            " / ".join(str(f.subtypes.get(k, 0)) for k in ("bacteria", "virus"))
            if f.subtypes
            else "-",
            "unknown" if f.patients is None else str(f.patients),
            sizes,
            ", ".join(f"{m} ×{n}" for m, n in f.modes.most_common()),
        )
    where = f"; each listed in {leaks_csv}" if leaks_csv and check.leaks.found else ""
    out: list = [table, f"leaks across splits: {check.leaks.summary()}{where}"]
    if check.identical_within_splits:
        out.append(
            f"{check.identical_within_splits} group(s) of byte-identical images inside one split "
            "(no leak; they weigh double in training)"
        )
    problems = check.problems
    if leaks_csv is not None:
        problems = [p for p in problems if not p.startswith("leak: ")]
    if problems:
        out.append(f"[bold red]{len(problems)} problem(s)[/]:")
        out += [f"  - {p}" for p in problems[:40]]
        if len(problems) > 40:
            out.append(f"  ... and {len(problems) - 40} more (--format json lists them all)")
    elif check.leaks.found:
        out.append("[bold yellow]no unreadable file, no layout problem; leaks as above[/]")
    else:
        out.append("[bold green]clean[/]: no unreadable file, no layout problem, no leak")
    return out
