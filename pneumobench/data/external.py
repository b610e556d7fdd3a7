"""A second, external test set for ``pneumobench evaluate --test-data``: read once, decoded at
each final model's own image size and resize rule, as training decoded its images.

Accepted layouts, checked like ``run`` checks its data (one DataError naming every problem):

- a folder with ``NORMAL/`` and ``PNEUMONIA/`` class folders (JPEG, PNG or DICOM; for the
  three-class task the pneumonia file names say ``bacteria`` or ``virus``, as Kermany's do);
- a Kaggle-layout root with a ``test/`` folder holding those class folders (only ``test/`` is
  read: an external set is evaluated, never trained on);
- a MedMNIST-style ``.npz`` (``test_images`` / ``test_labels``, or ``images`` / ``labels``;
  labels 0 normal, 1 pneumonia: binary task only).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumobench.config.fields import class_names_for
from pneumobench.data.decode import decode_many, unreadable_error
from pneumobench.data.records import ImageRecord
from pneumobench.data.sources.folder import CLASS_FOLDERS, _scan_class, _subdirs
from pneumobench.data.sources.medmnist import _read_npz, _resize, _split_arrays
from pneumobench.errors import DataError


@dataclass
class ExternalSet:
    """The external test images' identity and labels; pixels on demand per (size, resize)."""

    name: str
    path: Path
    task: str
    records: list[ImageRecord]
    digest: str  # the content (files' bytes or the arrays) with the labels: looks count by it
    has_patient_ids: bool
    _files: list[Path] = field(default_factory=list, repr=False)
    _arrays: np.ndarray | None = field(default=None, repr=False)  # npz: the native images
    _decoded: dict[tuple[int, str], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def keys(self) -> list[str]:
        return [r.key for r in self.records]

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)

    @property
    def patients(self) -> list[str]:
        return [r.patient for r in self.records]

    def images(self, size: int, resize: str) -> np.ndarray:
        """(N, size, size) uint8, decoded as the training data were (``pixels.decode_image``)."""
        key = (size, resize if self._arrays is None else "squash")
        if key not in self._decoded:
            if self._arrays is not None:
                self._decoded[key] = _resize(self._arrays, size)
            else:
                images, notes = decode_many(self._files, size, resize=resize)
                if notes["bad"]:
                    raise unreadable_error([f"{self._files[i]}: {why}" for i, why in notes["bad"]])
                self._decoded[key] = images
        return self._decoded[key]


def load_external(path: Path, task: str, name: str | None = None) -> ExternalSet:
    """Read and check an external test set (module docstring); every class of ``task`` must
    be present."""
    path = path.expanduser()
    if not path.exists():
        raise DataError(
            f"--test-data {path}: not found; give a folder with NORMAL/ and PNEUMONIA/ (or a "
            "test/ folder holding them), or a MedMNIST-style .npz"
        )
    label = name or path.stem
    external = _from_npz(path, task, label) if path.is_file() else _from_folder(path, task, label)
    present = set(external.labels.tolist())
    classes = class_names_for(task)
    missing = [c for i, c in enumerate(classes) if i not in present]
    if missing:
        raise DataError(
            f"--test-data {path}: no {', '.join(missing)} images; an external test set needs every "
            f"class of task {task} ({', '.join(classes)}) to measure sensitivity and specificity"
        )
    return external


def _from_folder(root: Path, task: str, name: str) -> ExternalSet:
    folders = _subdirs(root)
    if "test" in folders and not CLASS_FOLDERS & set(folders):
        root, split_root = root, folders["test"]
    else:
        split_root = root
    classes = _subdirs(split_root)
    problems: list[str] = []
    missing = sorted(CLASS_FOLDERS - set(classes))
    if missing:
        raise DataError(
            f"--test-data {split_root}: no {' or '.join(m.upper() for m in missing)} folder (found: "
            f"{', '.join(sorted(classes)) or 'nothing'}); an external test set is a folder with "
            "NORMAL/ and PNEUMONIA/, or a Kaggle-layout root holding test/"
        )
    records: list[ImageRecord] = []
    for cls in sorted(CLASS_FOLDERS):
        records.extend(_scan_class(root, classes[cls], "test", cls, task, problems))
    if problems:
        raise DataError(
            f"--test-data {root} has problems:\n  - "
            + "\n  - ".join(problems[:20])
            + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        )
    files = [root / r.key for r in records]
    digest = hashlib.sha256()
    for record, file in zip(records, files, strict=True):
        digest.update(f"{record.key}\0{record.label}\0".encode())
        digest.update(hashlib.sha1(file.read_bytes()).digest())
    has_ids = all(not r.patient.startswith("file:") for r in records)
    return ExternalSet(name, root, task, records, digest.hexdigest(), has_ids, _files=files)


def _from_npz(file: Path, task: str, name: str) -> ExternalSet:
    if task != "binary":
        raise DataError(
            f"--test-data {file}: a .npz holds normal / pneumonia labels only, but this experiment's "
            "task is multiclass; give a folder whose pneumonia file names say bacteria or virus"
        )
    arrays = _read_npz(file)
    split = "test" if "test_images" in arrays else None
    if split is None and {"images", "labels"} <= set(arrays):
        arrays = {"test_images": arrays["images"], "test_labels": arrays["labels"]}
    images, labels = _split_arrays(file, arrays, "test")
    digest = hashlib.sha256(images.tobytes() + labels.astype(np.int64).tobytes()).hexdigest()
    records = [
        ImageRecord(f"{file.stem}/{i}", "test", int(y), f"image-{i}") for i, y in enumerate(labels)
    ]
    return ExternalSet(name, file, task, records, digest, False, _arrays=images)
