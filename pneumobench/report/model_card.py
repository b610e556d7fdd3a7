"""The champion's model card (Markdown), written when the ``champion`` alias is set and logged
with its registered version: what the model is, the data and digest it was judged on, the
threshold it decides at and what that threshold achieved, calibration, external tests, and the
limits a reader must know before using it."""

from __future__ import annotations

import math
from typing import Any

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.deployed import target_status
from pneumobench.report.rows import LeaderboardRow
from pneumobench.tracking import schema as S

DEPLOYED = S.DEPLOYED_POINT


def _value(metrics: dict[str, float], key: str) -> str:
    value = metrics.get(key, math.nan)
    if not math.isfinite(value):
        return "n/a"
    low, high = (metrics.get(k, math.nan) for k in S.ci_names(key))
    if math.isfinite(low) and math.isfinite(high):
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"
    return f"{value:.3f}"


def model_card(
    row: LeaderboardRow,
    run: Any,
    registered: str,
    version: str,
    metric: str,
    looks: tuple[int, int],
) -> str:
    """The card's Markdown for ``row`` (the champion) registered as ``registered``/``version``."""
    tags, m = run.data.tags, row.all_metrics
    target_spec = row.op_target_specificity or "?"
    targets = row.targets(OperatingPointsConfig())
    threshold = m.get(S.threshold_name(DEPLOYED), math.nan)
    val_spec = m.get(S.val_metric(S.point_metric(DEPLOYED, "specificity")), math.nan)
    sens = S.test_metric(S.point_metric(DEPLOYED, "recall"))
    spec = S.test_metric(S.point_metric(DEPLOYED, "specificity"))
    low, high = (m.get(k, math.nan) for k in S.ci_names(spec))
    status = target_status(DEPLOYED, low, high, targets)
    held = {
        "below": "did NOT hold on test: the test population differs from validation",
        "above": "held on test (exceeded)",
        "held": "held on test (its interval covers the target)",
    }.get(status or "", "not judged (no interval)")
    lines = [
        f"# Model card: {registered} version {version} ({row.model})",
        "",
        "## Model",
        f"- architecture: {row.registry_name} ({row.family}), {row.num_params or '?'} parameters, "
        f"starting point: {row.starting_point}",
        f"- input: {row.image_size or '?'} px grey chest X-ray; classes: "
        f"{tags.get(S.CLASS_NAMES, '?')} (task {tags.get(S.TASK, '?')})",
        f"- trained by pneumobench {tags.get(S.VERSION, '?')} (commit "
        f"{tags.get(S.GIT_COMMIT, '?')}), seed {row.seed}, run {row.run_id}",
        f"- champion by the leaderboard metric {metric}",
        "",
        "## Intended use",
        "A research benchmark model for pneumonia vs normal on pediatric chest X-rays like its "
        "training data. It is not a medical device and has not been evaluated prospectively.",
        "",
        *_data(row, tags, looks),
        "## Decision threshold",
        f"- decides pneumonia where P(pneumonia) >= {threshold:.6f}: the lowest threshold "
        f"reaching specificity {target_spec} on the validation predictions (validation "
        f"specificity there: {val_spec:.3f})",
        f"- on test: sensitivity {_value(m, sens)}, specificity {_value(m, spec)}; the target "
        f"{held}",
        "",
        "## Performance on the internal test set (95% intervals, patients resampled)",
        f"- sensitivity at specificity >= {target_spec} on the test ROC curve: "
        f"{_value(m, S.test_metric('roc_sens_at_spec'))}",
        f"- ROC AUC {_value(m, S.test_metric('roc_auc'))}; PR AUC {_value(m, S.test_metric('pr_auc'))}",
        f"- calibration of P(pneumonia): ECE {_value(m, S.test_metric('ece'))}, Brier "
        f"{_value(m, S.test_metric('brier'))}, intercept "
        f"{_value(m, S.test_metric('calibration_intercept'))}, slope "
        f"{_value(m, S.test_metric('calibration_slope'))}",
    ]
    return "\n".join(lines + _external(row, sens, spec) + LIMITATIONS)


def _data(row: LeaderboardRow, tags: dict[str, str], looks: tuple[int, int]) -> list[str]:
    return [
        "## Data",
        f"- source: {tags.get(S.DATA_SOURCE, '?')} ({tags.get(S.DATA_PATH, '?')})",
        f"- dataset digest: {row.dataset_digest or tags.get(S.DATASET_DIGEST, '?')}; test split "
        f"digest: {row.test_digest or '?'}",
        f"- validation: {row.validation_note or 'carved from train by patient'}",
        f"- this test set was evaluated {looks[0]} time(s) in this store (all models, "
        f"{looks[1]} experiment(s))",
        "",
    ]


def _external(row: LeaderboardRow, sens: str, spec: str) -> list[str]:
    lines = ["", "## External test sets"]
    for name, ext in row.external.items():
        lines.append(
            f"- {name}: ROC AUC {_value(ext, S.test_metric('roc_auc'))}; at the deployed "
            f"threshold sensitivity {_value(ext, sens)}, specificity {_value(ext, spec)}"
        )
    if not row.external:
        lines.append("- none: `pneumobench evaluate CONFIG --test-data ...` adds one")
    return lines


LIMITATIONS = [
    "",
    "## Limitations",
    "- one source population; performance on other hospitals, devices and ages is unknown "
    "until measured (external test sets above)",
    "- the threshold was chosen on validation data; where it did not hold on test, choose "
    "it again on data from the site that will use the model",
    "- ranked on the same test set it is reported on: the champion's test numbers are "
    "optimistic by selection (evaluation.champion: validation avoids that)",
    "",
]
