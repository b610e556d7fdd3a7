"""Classification metrics, all from scikit-learn. Pneumonia is the positive class.

One function serves validation (every epoch) and test (once per final model), so the numbers Optuna
optimizes and the numbers the leaderboard ranks are computed the same way. Names: the seven
``LEADERBOARD_METRICS``; with three classes their macro averages, ``<metric>_<class>`` per class and
``binary_<metric>`` for any pneumonia vs normal (see :func:`pneumonia_score`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn import metrics as skm

from pneumobench.tracking import schema as S

LEADERBOARD_METRICS = ("recall", "f1", "precision", "specificity", "accuracy", "roc_auc", "pr_auc")


def is_pneumonia(y_true: np.ndarray) -> np.ndarray:
    """Any pneumonia (label != 0, normal being class 0) as 0/1: the clinical question."""
    return (np.asarray(y_true) != 0).astype(int)


def pneumonia_score(probs: np.ndarray) -> np.ndarray:
    """P(any pneumonia) = 1 - P(normal). With two classes it is P(pneumonia) (up to rounding); with
    three, bacterial and viral together. Operating points, DeLong and the report's curves use it."""
    return 1.0 - np.asarray(probs)[:, 0]


def decide_at(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Class index per row at an operating point: pneumonia when ``pneumonia_score`` reaches
    ``threshold`` (with three classes, then the more likely pneumonia class), else normal (0).
    What predict, serving and the deployed confusion matrices decide."""
    probs = np.asarray(probs)
    sick = pneumonia_score(probs) >= threshold
    if probs.shape[1] == 2:
        return sick.astype(int)
    return np.where(sick, 1 + probs[:, 1:].argmax(1), 0)


def _nan_if_undefined(fn, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    """A metric that is undefined on this sample (one class only) is NaN, not a crash."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(fn(*args, **kwargs))
        except ValueError:
            return math.nan


def binary_metrics(
    y_true: np.ndarray, p_positive: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """The seven leaderboard metrics of 0/1 labels, deciding positive at ``p >= threshold``."""
    y_pred = (p_positive >= threshold).astype(int)
    tn, fp, _fn, _tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {
        "accuracy": _nan_if_undefined(skm.accuracy_score, y_true, y_pred),
        "precision": _nan_if_undefined(skm.precision_score, y_true, y_pred, zero_division=0),
        "recall": _nan_if_undefined(skm.recall_score, y_true, y_pred, zero_division=0),
        "specificity": float(tn / (tn + fp)) if tn + fp else math.nan,
        "f1": _nan_if_undefined(skm.f1_score, y_true, y_pred, zero_division=0),
        "roc_auc": _nan_if_undefined(skm.roc_auc_score, y_true, p_positive),
        "pr_auc": _nan_if_undefined(skm.average_precision_score, y_true, p_positive),
    }


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, float]:
    """Binary: the seven leaderboard metrics. Multiclass: macro averages of them, per-class values
    (``recall_virus``) and the pneumonia-vs-normal collapse (``binary_recall``)."""
    y_true = np.asarray(y_true)
    if probs.shape[1] == 2:
        return binary_metrics(y_true, probs[:, 1])

    y_pred = probs.argmax(1)
    labels = list(range(len(class_names)))
    onehot = np.eye(len(class_names))[y_true]
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    specificity = []
    for k in labels:
        tn = cm.sum() - cm[k].sum() - cm[:, k].sum() + cm[k, k]
        fp = cm[:, k].sum() - cm[k, k]
        specificity.append(tn / (tn + fp) if tn + fp else math.nan)
    out = {
        "accuracy": _nan_if_undefined(skm.accuracy_score, y_true, y_pred),
        "precision": _nan_if_undefined(
            skm.precision_score, y_true, y_pred, labels=labels, average="macro", zero_division=0
        ),
        "recall": _nan_if_undefined(
            skm.recall_score, y_true, y_pred, labels=labels, average="macro", zero_division=0
        ),
        "specificity": float(np.nanmean(specificity)),
        "f1": _nan_if_undefined(
            skm.f1_score, y_true, y_pred, labels=labels, average="macro", zero_division=0
        ),
        "roc_auc": _nan_if_undefined(
            skm.roc_auc_score, y_true, probs, multi_class="ovr", average="macro", labels=labels
        ),
        "pr_auc": _nan_if_undefined(skm.average_precision_score, onehot, probs, average="macro"),
    }
    per_class = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for k, name in enumerate(class_names):
        out[f"precision_{name}"] = float(per_class[0][k])
        out[f"recall_{name}"] = float(per_class[1][k])
        out[f"f1_{name}"] = float(per_class[2][k])
        out[f"specificity_{name}"] = float(specificity[k])
    collapsed = binary_metrics(is_pneumonia(y_true), pneumonia_score(probs))
    out.update({f"binary_{k}": v for k, v in collapsed.items()})
    return out


def validation_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: tuple[str, ...], loss: float
) -> dict[str, float]:
    """The per-epoch ``val_*`` names Optuna and MLflow see (``roc_auc`` is ``val_auc`` there)."""
    m = classification_metrics(y_true, probs, class_names)
    core = {k: m[k] for k in ("accuracy", "precision", "recall", "specificity", "f1")}
    core["auc"] = m["roc_auc"]
    core["loss"] = loss
    return {S.val_metric(k): v for k, v in core.items()}
