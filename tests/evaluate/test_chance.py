"""Tests of pneumobench/evaluate/chance.py: the random scorer's reference."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.chance import chance_reference


def test_the_chance_reference_matches_an_independent_simulation() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(624) < 0.625).astype(int)
    reference = chance_reference(
        y,
        2,
        ["roc_auc", "pr_auc", "recall", "accuracy"],
        OperatingPointsConfig(),
        n_draws=300,
        seed=1,
        level=0.95,
    )
    sim = np.random.default_rng(2)
    aucs, aps = [], []
    for _ in range(300):
        score = sim.random(len(y))
        aucs.append(roc_auc_score(y, score))
        aps.append(average_precision_score(y, score))
    assert reference["roc_auc"][0] == pytest.approx(np.mean(aucs), abs=0.005)
    assert reference["roc_auc"][1] == pytest.approx(np.quantile(aucs, 0.025), abs=0.01)
    assert reference["roc_auc"][2] == pytest.approx(np.quantile(aucs, 0.975), abs=0.01)
    assert reference["pr_auc"][0] == pytest.approx(np.mean(aps), abs=0.005)
    assert reference["pr_auc"][0] == pytest.approx(y.mean(), abs=0.01)  # about the prevalence
    # sensitivity at specificity >= 0.90 of a random scorer: about 0.10
    assert reference["recall"][0] == pytest.approx(0.10, abs=0.02)
    assert reference["accuracy"][0] == pytest.approx(0.5, abs=0.01)


def test_threshold_metrics_have_no_chance_reference() -> None:
    y = np.array([0, 1] * 20)
    assert (
        chance_reference(
            y, 2, ["recall@spec"], OperatingPointsConfig(), n_draws=5, seed=0, level=0.95
        )
        == {}
    )
