"""Performance in subgroups (TRIPOD+AI 23a, CLAIM 37): sensitivity and specificity at the
deployed threshold and ROC AUC, each with a patient-clustered interval, per group.

A **grouping** gives each test image a group or none (``None``). Two kinds:

- what the data tells by itself (``derived_groupings``): on the binary Kermany task the pathogen
  in a pneumonia file's name (bacterial / viral), and the two file families of its normal images
  (``IM-*`` and ``NORMAL2-IM-*``);
- the user's CSV (``data.subgroups``, read by :mod:`pneumobench.data.subgroups`).

**Shared references.** A grouping may label one side of the question only: pathogen labels
pneumonia images, file family labels normal ones. Where every image of a side has no group,
that whole side is shared by every group, so "bacterial" means bacterial pneumonia against all
normal images (its sensitivity, and an AUC), and "NORMAL2-IM" means those normals against all
pneumonia (its specificity). Otherwise images without a group are left out. A rate a group
cannot measure (no positives, no negatives) is NaN, never a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from pneumobench.data.labels import pneumonia_subtype
from pneumobench.evaluate.metrics import is_pneumonia, pneumonia_score
from pneumobench.evaluate.statistics import cluster_weights, percentile_interval
from pneumobench.evaluate.weighted import weighted_auc, weighted_binary

SUBGROUP_METRICS = ("sensitivity", "specificity", "roc_auc")
MIN_GROUP_IMAGES = 5  # smaller groups are listed with their counts, without numbers


@dataclass
class SubgroupRow:
    """One group of one grouping: counts, and each metric with its interval."""

    grouping: str
    group: str
    source: str  # where the grouping comes from: "file names", or the CSV's name
    images: int
    patients: int
    positives: int
    negatives: int
    values: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


def derived_groupings(keys: list[str], y: np.ndarray, task: str) -> dict[str, list[str | None]]:
    """The groupings the file names carry (module docstring); groupings with fewer than two
    groups are left out (PneumoniaMNIST's keys carry none)."""
    names = [PurePosixPath(k).name for k in keys]
    sick = is_pneumonia(y).astype(bool)
    out: dict[str, list[str | None]] = {}
    if task == "binary":
        pathogen = [
            {"bacteria": "bacterial", "virus": "viral"}.get(pneumonia_subtype(n) or "")
            if s
            else None
            for n, s in zip(names, sick, strict=True)
        ]
        out["pathogen (file name)"] = [p or None for p in pathogen]
    family = [
        (
            n.split("-IM-")[0] + "-IM"
            if "-IM-" in n
            else "IM"
            if n.upper().startswith("IM-")
            else None
        )
        if not s
        else None
        for n, s in zip(names, sick, strict=True)
    ]
    out["normal file family"] = family
    return {k: v for k, v in out.items() if len({g for g in v if g}) >= 2}


def members(groups: list[str | None], sick: np.ndarray) -> dict[str, np.ndarray]:
    """Each group's image indices, shared references included (module docstring)."""
    labelled = np.array([g is not None for g in groups])
    shared = np.zeros(len(groups), dtype=bool)
    for side in (True, False):
        on_side = sick == side
        if on_side.any() and not labelled[on_side].any():
            shared |= on_side
    values = sorted({g for g in groups if g is not None})
    return {v: np.flatnonzero(np.array([g == v for g in groups]) | shared) for v in values}


def subgroup_rows(
    grouping: str,
    groups: list[str | None],
    source: str,
    *,
    y: np.ndarray,
    probs: np.ndarray,
    threshold: float,
    patients: list[str] | None,
    n_resamples: int,
    seed: int,
    level: float,
) -> list[SubgroupRow]:
    """One row per group: the deployed threshold's sensitivity and specificity, and ROC AUC,
    with intervals over resampled patients of the group."""
    sick = is_pneumonia(np.asarray(y)).astype(bool)
    score = pneumonia_score(np.asarray(probs))
    rows = []
    for group, index in members(groups, sick).items():
        g_sick, g_score = sick[index], score[index]
        g_patients = [patients[i] for i in index] if patients else None
        row = SubgroupRow(
            grouping,
            group,
            source,
            images=len(index),
            patients=len(set(g_patients)) if g_patients else len(index),
            positives=int(g_sick.sum()),
            negatives=int((~g_sick).sum()),
        )
        if len(index) >= MIN_GROUP_IMAGES:
            one = np.ones((1, len(index)))
            w = np.vstack([one, cluster_weights(g_sick, g_patients, n_resamples, seed)])
            values = _metrics(g_sick, g_score, threshold, w)
            for name, series in values.items():
                row.values[name] = float(series[0])
                row.intervals[name] = percentile_interval(series[1:], level)
        rows.append(row)
    return rows


def _metrics(
    sick: np.ndarray, score: np.ndarray, threshold: float, w: np.ndarray
) -> dict[str, np.ndarray]:
    nan = np.full(len(w), math.nan)
    rates = weighted_binary(sick, score >= threshold, w)
    both = sick.any() and (~sick).any()
    return {
        "sensitivity": rates["recall"] if sick.any() else nan,
        "specificity": rates["specificity"] if (~sick).any() else nan,
        "roc_auc": weighted_auc(sick, score, w) if both else nan,
    }
