"""What a random scorer reaches on this test set: the reference every ranked number is read
against. A scorer that knows nothing still gets ROC AUC about 0.5, PR AUC about the prevalence,
F1 on its PR curve about 2p / (1 + p); a trained row inside that range has shown nothing."""

from __future__ import annotations

import numpy as np

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.operating_points import RANKED, ranked_metric


def chance_reference(
    y: np.ndarray,
    n_classes: int,
    metrics: list[str],
    targets: OperatingPointsConfig,
    *,
    n_draws: int,
    seed: int,
    level: float,
) -> dict[str, tuple[float, float, float]]:
    """(expected value, low, high) of each threshold-free leaderboard metric for a scorer whose
    class probabilities are random (uniform on the simplex, independent of the labels), over
    ``n_draws`` draws on these test labels; ``level`` the central range."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    one = np.ones((1, len(y)))
    wanted = [m for m in metrics if RANKED[m][0] is None]
    values: dict[str, list[float]] = {m: [] for m in wanted}
    for _ in range(n_draws):
        probs = rng.dirichlet(np.ones(n_classes), len(y))
        for metric in wanted:
            values[metric].append(float(ranked_metric(metric, y, probs, {}, one, targets)[0]))
    alpha = (1 - level) / 2
    return {
        m: (float(np.mean(v)), float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha)))
        for m, v in values.items()
    }
