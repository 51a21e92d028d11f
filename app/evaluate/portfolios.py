"""Target weights of one rebalance from one cross-section of scores.

``None`` means the scores carry no ranking (fewer than two finite values, or all equal, as for
the zero forecast): the book then keeps its holdings instead of trading on noise. Ties inside a
ranking are broken by symbol order, so results are reproducible.
"""
from __future__ import annotations

import numpy as np


def _ranked(scores: np.ndarray) -> np.ndarray | None:
    """Indices of the finite scores, best first; None when they do not rank anything."""
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size < 2 or np.ptp(scores[finite]) == 0:
        return None
    order = np.lexsort((finite, -scores[finite]))  # primary key last: score descending, then position
    return finite[order]


def top_k(scores: np.ndarray, k: int) -> np.ndarray | None:
    """Long-only: equal weight on the ``k`` best scores (all of them when fewer are available)."""
    ranked = _ranked(scores)
    if ranked is None:
        return None
    chosen = ranked[:k]
    w = np.zeros(scores.size)
    w[chosen] = 1.0 / chosen.size
    return w


def long_short(scores: np.ndarray, n_quantiles: int) -> np.ndarray | None:
    """Top quantile long (weights sum to +1), bottom quantile short (−1): the quantile spread."""
    ranked = _ranked(scores)
    if ranked is None:
        return None
    leg = max(1, ranked.size // n_quantiles)
    w = np.zeros(scores.size)
    w[ranked[:leg]] = 1.0 / leg
    w[ranked[-leg:]] = -1.0 / leg
    return w


def equal_weight(scores: np.ndarray) -> np.ndarray | None:
    """The benchmark: every symbol with a score, equal weight."""
    finite = np.isfinite(scores)
    if not finite.any():
        return None
    return np.where(finite, 1.0 / finite.sum(), 0.0)
