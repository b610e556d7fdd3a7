"""PneumoniaMNIST through the ``medmnist`` package, official splits, offline from a local npz."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from pneumobench.data.cache import cache_key, cached_array
from pneumobench.data.records import ImageRecord, records_digest
from pneumobench.data.sources.base import DataSource, SourceImages, SourceRequest, limit_per_class
from pneumobench.errors import DataError

FLAG = "pneumoniamnist"


class MedMNISTSource(DataSource):
    """PneumoniaMNIST's official splits. No patient ids are published: each image is its own
    patient, and the official val split is used as it is."""

    name: ClassVar[str] = "medmnist"
    tasks: ClassVar[tuple[str, ...]] = ("binary",)
    carves_validation: ClassVar[bool] = False

    def load(self, request: SourceRequest) -> SourceImages:
        """Read the npz's official splits, resized once (cached) to the image size."""
        file, records, raw = load_medmnist(request.root)
        stat = file.stat()
        fingerprint = f"{records_digest(records)}|{stat.st_size}|{stat.st_mtime_ns}"
        keep = limit_per_class(records, request.limit_per_class, request.seed)
        if request.limit_per_class:
            records, raw = [records[i] for i in keep], raw[keep]
        limit_tag = f"|limit={request.limit_per_class}|seed={request.seed}"
        images, _ = cached_array(
            cache_key(fingerprint + limit_tag, request.image_size),
            request.cache_dir,
            lambda: (_resize(raw, request.image_size), {}),
        )
        return SourceImages(
            records,
            images,
            notes=["MedMNIST has no patient ids: its official val split is used as it is"],
        )


def expected_file(size: int = 28) -> str:
    """The file name MedMNIST uses for this image size."""
    return f"{FLAG}.npz" if size == 28 else f"{FLAG}_{size}.npz"


def load_medmnist(path: Path) -> tuple[Path, list[ImageRecord], np.ndarray]:
    """The file read, its records and its (N, size, size) uint8 images of train, val and test."""
    root, filename = (path.parent, path.name) if path.suffix == ".npz" else (path, expected_file())
    file = root / filename
    if not file.is_file():
        from medmnist import INFO

        info = INFO[FLAG]
        raise DataError(
            f"PneumoniaMNIST file not found: {file}\n"
            f"Download {filename} (md5 {info['MD5']}) from {info['url']} into {root}, "
            "or point data.path (or $PNEUMOBENCH_DATA_ROOT) at the folder that holds it."
        )
    from medmnist import PneumoniaMNIST

    size = 28 if filename == f"{FLAG}.npz" else int(filename.rsplit("_", 1)[1].split(".")[0])
    records: list[ImageRecord] = []
    images = []
    for split in ("train", "val", "test"):
        try:
            ds = PneumoniaMNIST(split=split, root=str(root), download=False, size=size)
        except Exception as exc:
            raise DataError(f"{file}: cannot read the '{split}' split: {exc}") from None
        labels = np.asarray(ds.labels).reshape(-1).astype(int)
        images.append(np.asarray(ds.imgs, dtype=np.uint8).reshape(len(labels), size, size))
        # MedMNIST publishes no patient ids: each image counts as its own patient.
        records.extend(
            ImageRecord(f"{FLAG}/{split}/{i}", split, int(y), f"{split}-{i}")
            for i, y in enumerate(labels)
        )
    return file, records, np.concatenate(images)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[-1] == size:
        return np.ascontiguousarray(images)
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).float().unsqueeze(1)
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy()
