"""PneumoniaMNIST through the ``medmnist`` package, official splits, offline from a local npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumobench.data.records import ImageRecord
from pneumobench.errors import DataError

FLAG = "pneumoniamnist"


def expected_file(size: int = 28) -> str:
    return f"{FLAG}.npz" if size == 28 else f"{FLAG}_{size}.npz"


def load_medmnist(path: Path) -> tuple[list[ImageRecord], np.ndarray]:
    """Records and the (N, 28, 28) uint8 images of train, val and test, in that order."""
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
    return records, np.concatenate(images)
