"""Tests of pneumobench/evaluate/metrics.py."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from pneumobench.evaluate.metrics import classification_metrics, validation_metrics


def test_binary_metrics_match_sklearn_on_a_fixed_case() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p1 = np.array([0.1, 0.6, 0.3, 0.8, 0.4, 0.9, 0.7, 0.55])
    probs = np.stack([1 - p1, p1], 1)
    m = classification_metrics(y, probs, ("normal", "pneumonia"))
    pred = (p1 >= 0.5).astype(int)
    assert m["recall"] == pytest.approx(4 / 5)
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p1))


def test_multiclass_macro_per_class_and_pneumonia_collapse() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.8, 0.1],
            [0.1, 0.2, 0.7],
            [0.1, 0.1, 0.8],
            [0.3, 0.3, 0.4],
        ]
    )
    names = ("normal", "bacteria", "virus")
    m = classification_metrics(y, probs, names)
    pred = probs.argmax(1)
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["recall_virus"] == pytest.approx(1.0)
    assert m["recall_bacteria"] == pytest.approx(0.5)
    # collapsed: pneumonia = bacteria or virus; only image 1 (a normal) is called sick
    assert m["binary_recall"] == pytest.approx(1.0)
    assert m["binary_specificity"] == pytest.approx(0.5)


def test_validation_names_and_undefined_auc_is_nan() -> None:
    y = np.array([1, 1, 1])
    probs = np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]])
    v = validation_metrics(y, probs, ("normal", "pneumonia"), loss=0.5)
    assert set(v) == {
        "val_accuracy",
        "val_precision",
        "val_recall",
        "val_specificity",
        "val_f1",
        "val_auc",
        "val_loss",
    }
    assert np.isnan(v["val_auc"])
