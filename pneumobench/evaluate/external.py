"""A fixed final model on a second, external test set, beside its internal test.

Nothing is chosen here: the thresholds are the ones the model deploys (chosen on its
validation predictions when it was evaluated), applied unchanged. Each number comes with its
interval on the external set (its patients resampled, or its images where it has no patient
ids), and with its **shift**: external minus internal, whose interval combines two independent
bootstraps (the two test sets share no images), one resample of each side per replicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pneumobench.config.sections import EvaluationConfig
from pneumobench.evaluate.calibration import calibration_metrics
from pneumobench.evaluate.operating_points import metrics_at, read_curves
from pneumobench.evaluate.statistics import cluster_weights, percentile_interval
from pneumobench.evaluate.weighted import curve_metrics
from pneumobench.tracking import schema as S

SHOWN = (  # what the console line shows: block 1, the deployed point, calibration
    "roc_sens_at_spec",
    "roc_auc",
    S.point_metric(S.DEPLOYED_POINT, "recall"),
    S.point_metric(S.DEPLOYED_POINT, "specificity"),
    "ece",
)


@dataclass(frozen=True)
class TestPredictions:
    """One test set's labels, a model's class probabilities and the images' patients."""

    y: np.ndarray
    probs: np.ndarray
    patients: list[str] | None


@dataclass
class ExternalResult:
    """Every metric on the external set, on the internal one, and their shift."""

    external: dict[str, float] = field(default_factory=dict)
    external_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    internal: dict[str, float] = field(default_factory=dict)
    shift: dict[str, float] = field(default_factory=dict)
    shift_ci: dict[str, tuple[float, float]] = field(default_factory=dict)


def metric_series(
    side: TestPredictions, thresholds: dict[str, float], evaluation: EvaluationConfig, seed: int
) -> dict[str, np.ndarray]:
    """Block 1 (curve reads and areas), block 2 (at the given thresholds) and calibration;
    entry 0 on the whole set, then one per bootstrap resample."""
    y, probs = np.asarray(side.y), np.asarray(side.probs)
    w = np.vstack(
        [
            np.ones((1, len(y))),
            cluster_weights(y, side.patients, evaluation.bootstrap_resamples, seed),
        ]
    )
    out = dict(read_curves(y, probs, w, evaluation.operating_points))
    out.update(curve_metrics(y, probs, w))
    out.update(metrics_at(y, probs, thresholds, w))
    out.update(calibration_metrics(y, probs, w, evaluation.calibration_bins))
    return out


def compare_external(
    internal: TestPredictions,
    external: TestPredictions,
    thresholds: dict[str, float],
    evaluation: EvaluationConfig,
    seed: int,
) -> ExternalResult:
    """The model's numbers on both test sets at the same (deployed) thresholds, and the shift."""
    inside = metric_series(internal, thresholds, evaluation, seed)
    outside = metric_series(external, thresholds, evaluation, seed + 1)
    result = ExternalResult()
    level = evaluation.ci_level
    for name, series in outside.items():
        result.external[name] = float(series[0])
        result.external_ci[name] = percentile_interval(series[1:], level)
        result.internal[name] = float(inside[name][0])
        result.shift[name] = float(series[0] - inside[name][0])
        result.shift_ci[name] = percentile_interval(series[1:] - inside[name][1:], level)
    return result
