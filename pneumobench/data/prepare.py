"""From a config's ``data`` section to train / val / test arrays, decoded once and auditable."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumobench import profile
from pneumobench.config import ExperimentConfig
from pneumobench.data.leaks import LeakReport, fingerprints, near_duplicates, shared_patients
from pneumobench.data.records import ImageRecord, records_digest
from pneumobench.data.sources import get_source
from pneumobench.data.sources.base import SourceImages, SourceRequest
from pneumobench.data.split import carve_validation
from pneumobench.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """One split as indices into the shared decoded-image array: no copy of the pixels."""

    source: np.ndarray  # (all images, H, W) uint8 grey: the decode cache, shared by the splits
    index: np.ndarray  # (N,) rows of ``source`` in this split
    labels: np.ndarray  # (N,) int64
    keys: list[str]
    patients: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def images(self) -> np.ndarray:
        """A copy of this split's images, (N, H, W) uint8."""
        return np.asarray(self.source[self.index])


@dataclass(kw_only=True)
class PreparedData:
    """Train, validation and test of one experiment, and what a user should know about them."""

    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    source: str
    root: Path
    digest: str  # identity of the images, labels and split assignment
    has_patient_ids: bool = True  # False: each image its own patient, patient counts unknown
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unreadable files left out, with reasons
    leaks: LeakReport = field(default_factory=lambda: LeakReport(patients_checked=False))
    test_digest: str = ""  # the test split's content and labels alone: the same test set
    #                        under any config (image size, validation carve) has the same one
    validation_note: str = ""  # what validation is, where it is weaker than it looks

    def splits(self) -> dict[str, Split]:
        """The three splits by name."""
        return {"train": self.train, "val": self.val, "test": self.test}

    def split_csv(self) -> str:
        """Which file went where: logged with every run so anyone can audit the split."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["path", "split", "label", "class", "patient"])
        for name, split in self.splits().items():
            for key, label, patient in zip(split.keys, split.labels, split.patients, strict=True):
                writer.writerow([key, name, int(label), self.class_names[label], patient])
        return out.getvalue()

    def summary(self) -> dict[str, int]:
        """Images, patients and images per class of each split (``n_train``, ``patients_val``,
        ``n_test_pneumonia``, ...)."""
        out: dict[str, int] = {}
        for name, split in self.splits().items():
            out[f"n_{name}"] = len(split)
            if self.has_patient_ids:  # else unknown, and left out rather than made up
                out[f"patients_{name}"] = len(set(split.patients))
            for i, cls in enumerate(self.class_names):
                out[f"n_{name}_{cls}"] = int((split.labels == i).sum())
        return out


def prepare_data(config: ExperimentConfig) -> PreparedData:
    """Load ``config.data`` through its source, split it, and describe what was loaded.

    The validation set is carved from train by patient where the source knows patients (see
    ``DataSource.carves_validation``); the digest identifies images, labels, split and size.
    """
    data = config.data
    request = source_request(config)
    source = get_source(data.source)
    loaded = source.load(request)
    records, notes = loaded.records, list(loaded.notes)
    labels = np.array([r.label for r in records], dtype=np.int64)
    final = _final_indices(config, source.carves_validation, loaded, labels, notes)
    splits = {
        name: Split(
            source=loaded.images,
            index=idx,
            labels=labels[idx],
            keys=[records[i].key for i in idx],
            patients=[records[i].patient for i in idx],
        )
        for name, idx in final.items()
    }
    _require_every_class(splits, config.class_names, source.carves_validation, data.val_fraction)
    assignment = [ImageRecord(k, s, 0, "") for s, sp in splits.items() for k in sp.keys]
    reshaped = data.resize != "squash" and not source.square_images
    geometry = str(data.image_size) + (f"|{data.resize}" if reshaped else "")
    digest = records_digest(records, records_digest(assignment, geometry))
    where = {int(i): name for name, idx in final.items() for i in idx}
    with profile.stage("leak checks"):
        leaks = check_leaks(splits, source.has_patient_ids)
    leaks.identical = cross_split_duplicates(loaded.content_digests, where, records)
    notes += _leak_notes(leaks, data.on_leak)
    test_digest = split_digest(records, final["test"], loaded.content_digests)
    validation_note = describe_validation(leaks, loaded.validation_caveat)
    return PreparedData(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        class_names=config.class_names,
        source=data.source,
        root=request.root,
        digest=digest,
        has_patient_ids=source.has_patient_ids,
        notes=notes,
        skipped=loaded.skipped,
        leaks=leaks,
        test_digest=test_digest,
        validation_note=validation_note,
    )


def _leak_notes(leaks: LeakReport, on_leak: str) -> list[str]:
    """The note a found leak leaves, or the DataError that ``on_leak: error`` asks for."""
    if not leaks.found:
        return []
    if on_leak == "error":
        shown = leaks.to_csv().splitlines()[1:11]
        raise DataError(
            f"leaks between splits: {leaks.summary()}. First findings (kind, a, b, detail):"
            "\n  - " + "\n  - ".join(shown) + "\nFix the splits, or set data.on_leak: warn "
            "to train anyway with the leaks reported."
        )
    return [f"leak check: {leaks.summary()}; listed in data/leaks.csv"]


def _require_every_class(
    splits: dict[str, Split], class_names: tuple[str, ...], carved: bool, fraction: float
) -> None:
    """Model choice and thresholds are made on validation: it must hold every class, and so must
    train and test. Too few images of a class is an error with the numbers, never a warning."""
    counts = {
        name: {c: int((split.labels == k).sum()) for k, c in enumerate(class_names)}
        for name, split in splits.items()
    }
    empty = [(name, c) for name, per in counts.items() for c, n in per.items() if n == 0]
    if not empty:
        return
    table = "; ".join(
        f"{name}: " + ", ".join(f"{n} {c}" for c, n in per.items()) for name, per in counts.items()
    )
    missing = ", ".join(f"no {c} image in {name}" for name, c in empty)
    hint = (
        f"the validation set is carved from train by patient ({fraction:.0%}): add images of that "
        "class, or raise data.val_fraction"
        if carved
        else "the source's own splits are used as they are: fix the data"
    )
    raise DataError(f"{missing} ({table}). {hint}.")


def source_request(config: ExperimentConfig) -> SourceRequest:
    """What the config asks of its data source."""
    data = config.data
    return SourceRequest(
        root=config.data_path(),
        image_size=data.image_size,
        task=config.task,
        seed=config.seed,
        limit_per_class=data.limit_per_class,
        cache_dir=Path(data.cache_dir).expanduser(),
        on_bad_image=data.on_bad_image,
        resize=data.resize,
        download=data.download,
        medmnist_size=data.medmnist_size,
    )


def _final_indices(
    config: ExperimentConfig,
    carves: bool,
    loaded: SourceImages,
    labels: np.ndarray,
    notes: list[str],
) -> dict[str, np.ndarray]:
    """Rows of train, val and test: the splits on disk, validation carved from train by patient
    where the source carves (a note says so)."""
    data, records = config.data, loaded.records
    on_disk = {
        s: np.array(
            [i for i, r in enumerate(records) if r.split == s and i not in loaded.excluded],
            dtype=np.int64,
        )
        for s in SPLITS
    }
    train_idx, val_idx = on_disk["train"], on_disk["val"]
    if carves and (data.merge_official_val or len(val_idx) == 0):
        train_idx, val_idx = _carve(
            records, labels, train_idx, val_idx, data.val_fraction, config.seed
        )
        notes.append(
            f"validation carved from train by patient ({data.val_fraction:.0%}, seed {config.seed})"
        )
    return {"train": train_idx, "val": val_idx, "test": on_disk["test"]}


def split_digest(records: list[ImageRecord], index: np.ndarray, contents: list[str]) -> str:
    """The identity of one split: its images' content (the file or array digest where the
    source gives one, else the key) and labels, in no particular order."""
    import hashlib

    items = sorted(
        f"{contents[i] if i < len(contents) and contents[i] else records[i].key}\0"
        f"{records[i].label}"
        for i in index
    )
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


def describe_validation(leaks: LeakReport, caveat: str) -> str:
    """One sentence on what the validation split is, where it is weaker than it looks: images
    or patients it shares with train, and what the source itself says ("" when nothing)."""
    identical = sum(
        1
        for group in leaks.identical
        for item in group
        if item.startswith("val:") and any(other.startswith("train:") for other in group)
    )
    near = sum(
        1
        for a, b, _ in leaks.near_duplicates
        if {a.split(":", 1)[0], b.split(":", 1)[0]} == {"train", "val"}
    )
    shared = sum(1 for splits in leaks.shared_patients.values() if {"train", "val"} <= set(splits))
    found = [
        f"{identical} val image(s) identical to train images" if identical else "",
        f"{near} near-duplicate train/val pair(s)" if near else "",
        f"{shared} patient(s) in both train and val" if shared else "",
    ]
    parts = [p for p in [caveat, "; ".join(f for f in found if f)] if p]
    return ": ".join(parts) if parts else ""


def _carve(
    records: list[ImageRecord],
    labels: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pool train and the official val, then carve validation from the pool by patient."""
    pool = np.concatenate([train_idx, val_idx])
    pool.sort()
    tr, va = carve_validation(labels[pool], [records[i].patient for i in pool], fraction, seed)
    return pool[tr], pool[va]


def check_leaks(splits: dict[str, Split], has_patient_ids: bool) -> LeakReport:
    """Patients and near-duplicate images shared by the final splits (see ``leaks``)."""
    report = LeakReport(patients_checked=has_patient_ids)
    if has_patient_ids:
        report.shared_patients = shared_patients({n: s.patients for n, s in splits.items()})
    prints = {name: fingerprints(split.images) for name, split in splits.items() if len(split)}
    report.near_duplicates = near_duplicates(prints, {n: s.keys for n, s in splits.items()})
    return report


def cross_split_duplicates(
    digests: list[str], final_split: dict[int, str], records: list[ImageRecord]
) -> list[list[str]]:
    """Groups of byte-identical files ("split:path") that ended up in different splits."""
    groups: dict[str, list[int]] = {}
    for i, digest in enumerate(digests):
        if digest and i in final_split:
            groups.setdefault(digest, []).append(i)
    return [
        [f"{final_split[i]}:{records[i].key}" for i in members]
        for members in groups.values()
        if len({final_split[i] for i in members}) > 1
    ]
