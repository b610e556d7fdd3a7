"""From a config's ``data`` section to train / val / test arrays, decoded once and auditable."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumobench.config import ExperimentConfig
from pneumobench.data.cache import cache_key, cached_array
from pneumobench.data.decode import decode_many, unreadable_error
from pneumobench.data.folder import scan_folder
from pneumobench.data.medmnist_source import load_medmnist
from pneumobench.data.records import ImageRecord, records_digest
from pneumobench.data.split import carve_validation


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


@dataclass
class PreparedData:
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    image_size: int
    source: str
    root: Path
    digest: str  # identity of the images, labels and split assignment
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unreadable files left out, with reasons
    leaks: list[list[str]] = field(default_factory=list)  # byte-identical files in several splits

    def splits(self) -> dict[str, Split]:
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
        out: dict[str, int] = {}
        for name, split in self.splits().items():
            out[f"n_{name}"] = len(split)
            out[f"patients_{name}"] = len(set(split.patients))
            for i, cls in enumerate(self.class_names):
                out[f"n_{name}_{cls}"] = int((split.labels == i).sum())
        return out


def prepare_data(config: ExperimentConfig) -> PreparedData:
    data = config.data
    root = config.data_path()
    size = data.image_size
    cache_dir = Path(data.cache_dir).expanduser()
    notes: list[str] = []
    skipped: list[str] = []
    excluded: set[int] = set()
    decode_notes: dict = {}

    if data.source == "medmnist":
        records, raw = load_medmnist(root)
        stat = (root if root.suffix == ".npz" else root / "pneumoniamnist.npz").stat()
        fingerprint = f"{records_digest(records)}|{stat.st_size}|{stat.st_mtime_ns}"
        records, raw = _limit(records, raw, data.limit_per_class, config.seed)
        images, decode_notes = cached_array(
            cache_key(fingerprint + _limit_tag(config), size),
            cache_dir,
            lambda: (_resize(raw, size), {}),
        )
        notes.append("MedMNIST has no patient ids: its official val split is used as it is")
    else:
        records = scan_folder(root, config.task)
        records, _ = _limit(records, None, data.limit_per_class, config.seed)
        paths = [root / r.key for r in records]
        stats = [p.stat() for p in paths]
        fingerprint = records_digest(
            records, "|".join(f"{s.st_size}:{s.st_mtime_ns}" for s in stats)
        )
        images, decode_notes = cached_array(
            cache_key(fingerprint, size), cache_dir, lambda: decode_many(paths, size)
        )
        bad = [(int(i), str(reason)) for i, reason in decode_notes.get("bad", [])]
        if bad and data.on_bad_image == "error":
            raise unreadable_error([f"{paths[i]}: {reason}" for i, reason in bad])
        for i, reason in bad:
            skipped.append(f"{records[i].key}: {reason}")
        if bad:
            notes.append(f"{len(bad)} unreadable image(s) left out (data.on_bad_image: skip)")
        excluded = {i for i, _ in bad}

    labels = np.array([r.label for r in records], dtype=np.int64)
    by_split = {
        s: np.array(
            [i for i, r in enumerate(records) if r.split == s and i not in excluded], dtype=np.int64
        )
        for s in ("train", "val", "test")
    }
    if data.source == "folder" and (data.merge_official_val or len(by_split["val"]) == 0):
        pool = np.concatenate([by_split["train"], by_split["val"]])
        pool.sort()
        patients = [records[i].patient for i in pool]
        tr, va = carve_validation(labels[pool], patients, data.val_fraction, config.seed)
        train_idx, val_idx = pool[tr], pool[va]
        notes.append(
            f"validation carved from train by patient ({data.val_fraction:.0%}, seed {config.seed})"
        )
    else:
        train_idx, val_idx = by_split["train"], by_split["val"]

    def make(idx: np.ndarray) -> Split:
        return Split(
            source=images,
            index=idx,
            labels=labels[idx],
            keys=[records[i].key for i in idx],
            patients=[records[i].patient for i in idx],
        )

    train, val, test = make(train_idx), make(val_idx), make(by_split["test"])
    assignment = [
        ImageRecord(k, s, 0, "")
        for s, sp in (("train", train), ("val", val), ("test", test))
        for k in sp.keys
    ]
    digest = records_digest(records, records_digest(assignment, str(size)))
    final_split = {
        int(i): name
        for name, idx in (("train", train_idx), ("val", val_idx), ("test", by_split["test"]))
        for i in idx
    }
    leaks = cross_split_duplicates(decode_notes.get("sha1", []), final_split, records)
    if leaks:
        notes.append(
            f"{len(leaks)} group(s) of byte-identical images sit in more than one split (a leak); "
            "listed in data/duplicates_across_splits.csv"
        )
    return PreparedData(
        train, val, test, config.class_names, size, data.source, root, digest, notes, skipped, leaks
    )


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


def _limit(
    records: list[ImageRecord], raw: np.ndarray | None, limit: int | None, seed: int
) -> tuple[list[ImageRecord], np.ndarray | None]:
    """At most ``limit`` images per (split, label), drawn with the seed: for smoke runs."""
    if not limit:
        return records, raw
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    groups: dict[tuple[str, int], list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault((r.split, r.label), []).append(i)
    for members in groups.values():
        chosen = rng.choice(len(members), size=min(limit, len(members)), replace=False)
        keep.extend(members[j] for j in chosen)
    keep.sort()
    return [records[i] for i in keep], (raw[keep] if raw is not None else None)


def _limit_tag(config: ExperimentConfig) -> str:
    return f"|limit={config.data.limit_per_class}|seed={config.seed}"


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[-1] == size:
        return np.ascontiguousarray(images)
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).float().unsqueeze(1)
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy()
