"""Tests of pneumobench/evaluate/subgroups.py and the user's subgroup CSV (data/subgroups.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pneumobench.data.subgroups import read_subgroups
from pneumobench.errors import ConfigError
from pneumobench.evaluate.statistics import cluster_weights, percentile_interval
from pneumobench.evaluate.subgroups import derived_groupings, members, subgroup_rows
from pneumobench.evaluate.weighted import weighted_binary

KEYS = [
    "test/PNEUMONIA/person1_bacteria_1.jpeg",
    "test/PNEUMONIA/person1_bacteria_2.jpeg",
    "test/PNEUMONIA/person2_virus_1.jpeg",
    "test/PNEUMONIA/person3_virus_1.jpeg",
    "test/NORMAL/IM-0001-0001.jpeg",
    "test/NORMAL/NORMAL2-IM-0002-0001.jpeg",
    "test/NORMAL/IM-0003-0001.jpeg",
]
Y = np.array([1, 1, 1, 1, 0, 0, 0])


def test_file_names_give_pathogen_and_file_family_with_shared_references() -> None:
    groupings = derived_groupings(KEYS, Y, "binary")
    assert groupings["pathogen (file name)"] == ["bacterial"] * 2 + ["viral"] * 2 + [None] * 3
    assert groupings["normal file family"] == [None] * 4 + ["IM", "NORMAL2-IM", "IM"]
    sick = Y.astype(bool)
    bacterial = members(groupings["pathogen (file name)"], sick)["bacterial"]
    assert bacterial.tolist() == [0, 1, 4, 5, 6]  # its pneumonia, and every normal image
    assert "pathogen (file name)" not in derived_groupings(
        KEYS, np.array([1, 1, 2, 2, 0, 0, 0]), "multiclass"
    )
    assert (
        derived_groupings(
            ["pneumoniamnist/test/0", "pneumoniamnist/test/1"], np.array([0, 1]), "binary"
        )
        == {}
    )


def test_a_group_row_equals_the_metrics_on_its_images_with_patient_intervals() -> None:
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    probs = np.column_stack([1 - score, score])
    groups = [("a" if i % 3 else "b") for i in range(n)]
    patients = [f"p{i // 2}" for i in range(n)]
    rows = subgroup_rows(
        "site",
        groups,
        "sites.csv",
        y=y,
        probs=probs,
        threshold=0.5,
        patients=patients,
        n_resamples=300,
        seed=4,
        level=0.95,
    )
    b = next(r for r in rows if r.group == "b")
    index = np.array([i for i in range(n) if groups[i] == "b"])
    truth, decided = y[index].astype(bool), score[index] >= 0.5
    assert b.images == len(index) and b.positives == truth.sum()
    assert b.values["sensitivity"] == pytest.approx(decided[truth].mean())
    assert b.values["specificity"] == pytest.approx((~decided[~truth]).mean())
    w = cluster_weights(truth, [patients[i] for i in index], 300, 4)
    expected = percentile_interval(weighted_binary(truth, decided, w)["recall"], 0.95)
    assert b.intervals["sensitivity"] == pytest.approx(expected)


def test_a_group_without_negatives_has_no_specificity_or_auc() -> None:
    groups = ["x", "x", "x", "x", "x", None, "y"]  # both sides labelled in part: nothing shared
    probs = np.column_stack([np.full(7, 0.3), np.full(7, 0.7)])
    y = np.array([1, 1, 1, 1, 1, 0, 0])
    row, _ = subgroup_rows(
        "g",
        groups,
        "f.csv",
        y=y,
        probs=probs,
        threshold=0.5,
        patients=None,
        n_resamples=100,
        seed=0,
        level=0.95,
    )
    assert row.values["sensitivity"] == 1.0
    assert math.isnan(row.values["specificity"]) and math.isnan(row.values["roc_auc"])


def test_the_user_csv_matches_paths_and_names_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "groups.csv"
    good.write_text(
        "path,sex,site\nperson1_bacteria_1.jpeg,F,A\ntest/NORMAL/IM-0001-0001.jpeg,M,\n"
        "train/NORMAL/IM-9999-0001.jpeg,M,B\n"
    )
    file = read_subgroups(good)
    groupings, unnamed = file.groupings(KEYS)
    assert groupings["sex"][:2] == ["F", None] and groupings["sex"][4] == "M"
    assert groupings["site"][4] is None  # an empty cell: in no group
    assert unnamed == 5
    bad = tmp_path / "bad.csv"
    bad.write_text("path,sex\nperson1_bacteria_1.jpeg,F\nperson2_virus_1.jpeg,F,extra\n")
    with pytest.raises(ConfigError, match=r"bad\.csv\), line 3: 3 cell\(s\), the header has 2"):
        read_subgroups(bad)
    bad.write_text("image,sex\na.jpeg,F\n")
    with pytest.raises(ConfigError, match="line 1: the first column must be 'path' or 'id'"):
        read_subgroups(bad)
    bad.write_text("id,sex\nIM-1,F\nim-1,M\n")
    with pytest.raises(ConfigError, match="line 3: image 'im-1' is listed twice"):
        read_subgroups(bad)
    with pytest.raises(ConfigError, match="file not found"):
        read_subgroups(tmp_path / "missing.csv")
