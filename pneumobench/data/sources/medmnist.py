"""PneumoniaMNIST (MedMNIST v2 / MedMNIST+), official splits, from a local npz that is fetched
(md5 checked) when it is missing and ``data.download`` allows it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from pneumobench.data.cache import cache_key, cached_array
from pneumobench.data.fetch.medmnist import FLAG, expected_file, fetch_pneumoniamnist, size_of
from pneumobench.data.records import ImageRecord, records_digest
from pneumobench.data.sources.base import (
    DataSource,
    SourceImages,
    SourceRequest,
    cache_note,
    limit_per_class,
)
from pneumobench.errors import DataError


class MedMNISTSource(DataSource):
    """PneumoniaMNIST's official splits. No patient ids are published: each image is its own
    patient, and the official val split is used as it is."""

    name: ClassVar[str] = "medmnist"
    carves_validation: ClassVar[bool] = False
    has_patient_ids: ClassVar[bool] = False
    square_images: ClassVar[bool] = True

    def load(self, request: SourceRequest) -> SourceImages:
        """Read the npz's official splits (fetched first if missing), resized once (cached)."""
        file = medmnist_file(request.root, request.medmnist_size)
        if not file.is_file() and request.download == "auto":
            fetch_missing(file)
        file, records, raw = load_medmnist(file)
        stat = file.stat()
        fingerprint = f"{records_digest(records)}|{stat.st_size}|{stat.st_mtime_ns}"
        keep = limit_per_class(records, request.limit_per_class, request.seed)
        if request.limit_per_class:
            records, raw = [records[i] for i in keep], raw[keep]
        limit_tag = f"|limit={request.limit_per_class}|seed={request.seed}"
        images, decoded = cached_array(
            cache_key(fingerprint + limit_tag, request.image_size),
            request.cache_dir,
            lambda: (_resize(raw, request.image_size), {}),
        )
        return SourceImages(
            records,
            images,
            notes=[
                "MedMNIST has no patient ids: its official val split is used as it is",
                *cache_note(decoded),
            ],
            content_digests=content_digests(raw),
            validation_caveat=VALIDATION_CAVEAT,
        )


# What the official PneumoniaMNIST validation split is (its images are Kermany train images).
VALIDATION_CAVEAT = (
    "PneumoniaMNIST's official val split shares children with train (MedMNIST publishes no "
    "patient ids): validation scores are optimistic"
)


def content_digests(images: np.ndarray) -> list[str]:
    """One digest per image of the file's own pixels (before any resize): identical images are
    found identical across splits, as byte-identical files are in a folder."""
    return [hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images]


def medmnist_file(path: Path, size: int | None = None) -> Path:
    """The npz that ``data.path`` and ``data.medmnist_size`` name: a file, or the MedMNIST file
    of that size (28 px by default) in a folder. A file name of another size is an error."""
    if path.suffix != ".npz":
        return path / expected_file(size or 28)
    implied = size_of(path.name)
    if size and implied and implied != size:
        raise DataError(
            f"data.path names {path.name} ({implied} px) but data.medmnist_size is {size}: point "
            f"data.path at {expected_file(size)} (or its folder), or drop data.medmnist_size"
        )
    return path


def fetch_missing(file: Path) -> None:
    """Fetch a missing PneumoniaMNIST file by its MedMNIST name (data.download: auto)."""
    size = size_of(file.name)
    if size is None:
        return  # a file name of the user's own: nothing to fetch, load_medmnist says so
    try:
        fetch_pneumoniamnist(file.parent, size)
    except DataError as exc:
        raise DataError(
            f"PneumoniaMNIST file not found: {file}, and fetching it failed: {exc}\n"
            f"{_by_hand(file)} Or set data.download: never to stop trying."
        ) from None


def _by_hand(file: Path) -> str:
    from pneumobench.data.fetch.medmnist import remote_file

    remote = remote_file(size_of(file.name) or 28)
    return (
        f"Download {remote.filename} (md5 {remote.md5}) from {remote.url} into {file.parent} "
        "(or `pneumobench data fetch pneumoniamnist`), or point data.path (or "
        "$PNEUMOBENCH_DATA_ROOT) at the folder that holds it."
    )


def load_medmnist(path: Path) -> tuple[Path, list[ImageRecord], np.ndarray]:
    """The file read, its records and its (N, size, size) uint8 images of train, val and test.

    ``path``: the npz, or a folder holding ``pneumoniamnist.npz``. The arrays are checked before
    use (keys, shapes, labels 0/1), each problem a DataError that names the file; the file is
    read with ``allow_pickle=False``, always.
    """
    file = medmnist_file(path)
    if not file.is_file():
        raise DataError(f"PneumoniaMNIST file not found: {file}\n{_by_hand(file)}")
    arrays = _read_npz(file)
    records: list[ImageRecord] = []
    images = []
    native = size_of(file.name)
    # Keys name the MedMNIST+ size (28 px keeps the plain name): the digest tells sizes apart.
    prefix = FLAG if native in (None, 28) else f"{FLAG}_{native}"
    for split in ("train", "val", "test"):
        imgs, labels = _split_arrays(file, arrays, split)
        images.append(imgs)
        # MedMNIST publishes no patient ids: each image counts as its own patient.
        records.extend(
            ImageRecord(f"{prefix}/{split}/{i}", split, int(y), f"{split}-{i}")
            for i, y in enumerate(labels)
        )
    sizes = {a.shape[1:] for a in images}
    if len(sizes) > 1:
        raise DataError(f"{file}: the splits have different image sizes {sorted(sizes)}")
    return file, records, np.concatenate(images)


def _read_npz(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise ValueError("a single array, not an .npz archive")
            return {key: npz[key] for key in npz.files}
    except Exception as exc:  # not a zip, truncated, object arrays, an HTML page, ...
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if "pickle" in reason:  # numpy's hint to unpickle is never the way out here
            reason = "not a NumPy .npz archive (a web page or another file under that name?)"
        raise DataError(
            f"{file}: not a readable MedMNIST .npz file ({reason}). {_by_hand(file)}"
        ) from None


def _split_arrays(
    file: Path, arrays: dict[str, np.ndarray], split: str
) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, S, S) uint8, labels (N,) of 0/1) of one split, checked."""
    image_key, label_key = f"{split}_images", f"{split}_labels"
    missing = [k for k in (image_key, label_key) if k not in arrays]
    if missing:
        raise DataError(
            f"{file}: no {' or '.join(missing)} array (found: {', '.join(sorted(arrays)) or 'none'});"
            " a MedMNIST file holds train/val/test _images and _labels"
        )
    imgs, labels = arrays[image_key], arrays[label_key]
    if imgs.ndim == 4 and imgs.shape[-1] == 1:
        imgs = imgs[..., 0]
    if imgs.ndim != 3 or imgs.shape[1] != imgs.shape[2] or imgs.dtype != np.uint8:
        raise DataError(
            f"{file}: {image_key} must be (N, S, S) uint8 grey images, got {imgs.shape} {imgs.dtype}"
        )
    labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if labels.ndim != 1 or len(labels) != len(imgs):
        raise DataError(
            f"{file}: {label_key} must hold one label per image ({len(imgs)}), got shape "
            f"{arrays[label_key].shape}"
        )
    bad = sorted(set(np.unique(labels).tolist()) - {0, 1})
    if bad:
        raise DataError(
            f"{file}: {label_key} holds {bad[:5]}; PneumoniaMNIST labels are 0 (normal) and "
            "1 (pneumonia)"
        )
    return np.ascontiguousarray(imgs), labels.astype(int)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[-1] == size:
        return np.ascontiguousarray(images)
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).float().unsqueeze(1)
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy()
