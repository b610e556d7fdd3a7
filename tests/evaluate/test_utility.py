"""Tests of pneumobench/evaluate/utility.py: net benefit against dcurves and the closed formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pneumobench.evaluate.utility import decision_curve, net_benefit, threshold_grid


def test_net_benefit_equals_dcurves_for_the_model_and_both_defaults() -> None:
    dcurves = pytest.importorskip("dcurves")
    rng = np.random.default_rng(0)
    score = rng.uniform(size=300)
    y = (rng.uniform(size=300) < score).astype(int)
    grid = threshold_grid(0.05, 0.95)
    ours = decision_curve(y, np.column_stack([1 - score, score]), grid)
    theirs = dcurves.dca(
        data=pd.DataFrame({"y": y, "p": score}), outcome="y", modelnames=["p"], thresholds=grid
    )
    for name, values in (("p", ours.model), ("all", ours.treat_all), ("none", ours.treat_none)):
        expected = theirs[theirs.model == name].sort_values("threshold").net_benefit.to_numpy()
        np.testing.assert_allclose(values, expected, atol=1e-12, err_msg=name)


def test_the_closed_formula_on_a_small_case() -> None:
    sick = np.array([1, 1, 0, 0])
    score = np.array([0.9, 0.4, 0.6, 0.1])
    nb = net_benefit(sick, score, np.array([0.5, 0.25]))
    # pt 0.5: TP 1, FP 1 -> 1/4 - 1/4 * 1 = 0; pt 0.25: TP 2, FP 1 -> 2/4 - 1/4 * 1/3
    np.testing.assert_allclose(nb, [0.0, 0.5 - 1 / 12])
    assert threshold_grid(0.05, 0.95)[[0, -1]].tolist() == [0.05, 0.95]
