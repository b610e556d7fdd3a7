"""Leaks between splits, found before training: shared patients, near-duplicate images, copies.

A test image whose patient, or whose picture, is also in train makes every test number look
better than the model is. Three checks, on the decoded images and the records:

- **patients** in more than one split (where the source knows patients; PneumoniaMNIST does not);
- **near-duplicates**: images in different splits whose perceptual hash (pHash: the signs of the
  8x8 lowest frequencies of a 32x32 DCT, 64 bits) differs in at most ``HASH_BITS`` bits AND whose
  32x32 thumbnails correlate at ``MIN_CORRELATION`` or more. Chest X-rays look alike, so the hash
  alone flags different children; the correlation confirms. Measured on the shared Kermany
  images (README, "Leak checks"): re-encoded, resized, brightened copies are caught, different
  images are not;
- **identical files**: byte-identical files in different splits (content digest).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

HASH_BITS = 10  # of 64
MIN_CORRELATION = 0.97
_SPLIT_PAIRS = (("train", "val"), ("train", "test"), ("val", "test"))


@dataclass
class LeakReport:
    """What crosses the split boundaries; ``patients_checked`` False where ids are unknown."""

    patients_checked: bool
    shared_patients: dict[str, list[str]] = field(default_factory=dict)  # patient -> splits
    near_duplicates: list[tuple[str, str, int]] = field(default_factory=list)  # a, b, bits
    identical: list[list[str]] = field(default_factory=list)  # groups of "split:path"

    def counts(self) -> dict[str, int]:
        """The numbers that go to MLflow params and the report."""
        return {
            "leak_shared_patients": len(self.shared_patients),
            "leak_near_duplicate_pairs": len(self.near_duplicates),
            "leak_identical_groups": len(self.identical),
        }

    @property
    def found(self) -> bool:
        """Whether anything crosses a split boundary."""
        return any(self.counts().values())

    def summary(self) -> str:
        """One line for the console and errors."""
        patients = (
            f"{len(self.shared_patients)} patient id(s) in more than one split (for Kermany's "
            "personN: possibly one child on both sides)"
            if self.patients_checked
            else "patients not checked (the source has no patient ids)"
        )
        return (
            f"{patients}, {len(self.near_duplicates)} near-duplicate image pair(s) across splits "
            f"(pHash within {HASH_BITS} bits, thumbnails correlating >= {MIN_CORRELATION}), "
            f"{len(self.identical)} group(s) of "
            "byte-identical files across splits"
        )

    def to_csv(self) -> str:
        """``kind, a, b, detail``: every finding, for ``data/leaks.csv``."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["kind", "a", "b", "detail"])
        for patient, splits in sorted(self.shared_patients.items()):
            writer.writerow(["patient", patient, "", "+".join(splits)])
        for a, b, bits in self.near_duplicates:
            writer.writerow(["near_duplicate", a, b, f"{bits} bits"])
        for group in self.identical:
            writer.writerow(["identical", group[0], ";".join(group[1:]), f"{len(group)} files"])
        return out.getvalue()


def fingerprints(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) uint64 pHash and (N, 1024) unit-norm, mean-free 32x32 thumbnails of (N, H, W) images
    (NumPy only: ``data check`` answers without importing torch)."""
    from scipy.fft import dctn

    hashes = np.zeros(len(images), dtype=np.uint64)
    thumbs = np.zeros((len(images), 1024), dtype=np.float32)
    weights = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)
    for start in range(0, len(images), 256):  # float64 integral images: keep chunks small
        small = area_resize(np.asarray(images[start : start + 256]), 32)
        low = dctn(small, axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(small), 64)
        median = np.median(low[:, 1:], axis=1, keepdims=True)  # the DC term would dominate
        bits = (low > median).astype(np.uint64)
        hashes[start : start + len(small)] = (bits * weights).sum(1, dtype=np.uint64)
        flat = small.reshape(len(small), -1)
        flat = flat - flat.mean(1, keepdims=True)
        thumbs[start : start + len(small)] = flat / (
            np.linalg.norm(flat, axis=1, keepdims=True) + 1e-9
        )
    return hashes, thumbs


def area_resize(images: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size) float32 box averages of (N, H, W) images: the output pixel ``i`` averages
    input rows ``floor(i H / size)`` to ``ceil((i + 1) H / size)``, as torch's adaptive average
    pooling ("area" interpolation) does."""
    n, h, w = images.shape
    integral = np.zeros((n, h + 1, w + 1), dtype=np.float64)
    integral[:, 1:, 1:] = images.astype(np.float64).cumsum(1).cumsum(2)
    i = np.arange(size)
    r0, r1 = (i * h) // size, -((-(i + 1) * h) // size)
    c0, c1 = (i * w) // size, -((-(i + 1) * w) // size)
    box = (
        integral[:, r1][:, :, c1]
        - integral[:, r0][:, :, c1]
        - integral[:, r1][:, :, c0]
        + integral[:, r0][:, :, c0]
    )
    area = (r1 - r0)[:, None] * (c1 - c0)[None, :]
    return (box / area).astype(np.float32)


def near_duplicates(
    prints: dict[str, tuple[np.ndarray, np.ndarray]], keys: dict[str, list[str]]
) -> list[tuple[str, str, int]]:
    """("split:key", "split:key", hash bits) of every cross-split near-duplicate pair."""
    found = []
    for a, b in _SPLIT_PAIRS:
        if a not in prints or b not in prints:
            continue
        (hash_a, thumb_a), (hash_b, thumb_b) = prints[a], prints[b]
        for start in range(0, len(hash_a), 1024):
            distance = np.bitwise_count(hash_a[start : start + 1024, None] ^ hash_b[None, :])
            for i, j in zip(*np.nonzero(distance <= HASH_BITS), strict=True):
                if float(thumb_a[start + i] @ thumb_b[j]) >= MIN_CORRELATION:
                    found.append(
                        (f"{a}:{keys[a][start + i]}", f"{b}:{keys[b][j]}", int(distance[i, j]))
                    )
    return found


def shared_patients(patients: dict[str, list[str]]) -> dict[str, list[str]]:
    """Patients that appear in more than one split, with those splits."""
    where: dict[str, list[str]] = {}
    for split, members in patients.items():
        for patient in set(members):
            where.setdefault(patient, []).append(split)
    return {p: sorted(s) for p, s in where.items() if len(s) > 1}
