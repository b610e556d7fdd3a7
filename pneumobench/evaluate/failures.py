"""Failure analysis (CLAIM 39): what a model gets wrong at its deployed operating point.

- ``deployed_confusion``: the confusion matrix of the decisions the deployed threshold makes
  (``metrics.decide_at``), not of argmax: the matrix a user of ``predict`` would see.
- ``confident_errors``: the false negatives the model was surest were normal (lowest
  P(pneumonia)) and the false positives it was surest were pneumonia (highest), the cases a
  reader should look at first; the report shows them with their Grad-CAM maps.
"""

from __future__ import annotations

import numpy as np

from pneumobench.evaluate.metrics import decide_at, is_pneumonia, pneumonia_score

FALSE_NEGATIVE = "false negative"
FALSE_POSITIVE = "false positive"


def deployed_confusion(y: np.ndarray, probs: np.ndarray, threshold: float) -> np.ndarray:
    """(classes, classes) counts: rows the truth, columns the decision at ``threshold``."""
    k = np.asarray(probs).shape[1]
    decided = decide_at(probs, threshold)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y), decided), 1)
    return matrix


def confident_errors(
    y: np.ndarray, probs: np.ndarray, threshold: float, per_kind: int
) -> list[tuple[str, int]]:
    """(kind, image index) of up to ``per_kind`` most confident false negatives, then false
    positives, at the deployed threshold (ties: the lower index first)."""
    sick, score = is_pneumonia(np.asarray(y)).astype(bool), pneumonia_score(probs)
    said = score >= threshold
    fn = np.flatnonzero(sick & ~said)
    fp = np.flatnonzero(~sick & said)
    fn = fn[np.argsort(score[fn], kind="stable")][:per_kind]
    fp = fp[np.argsort(-score[fp], kind="stable")][:per_kind]
    return [(FALSE_NEGATIVE, int(i)) for i in fn] + [(FALSE_POSITIVE, int(i)) for i in fp]
