"""Forecast metrics on numpy arrays: errors, per-date cross-sectional IC, directional accuracy.

IC and rank IC follow the usual factor-research definition: the Pearson (rank IC: Spearman)
correlation between predictions and labels *within one date*, averaged over dates. Dates with
fewer than two samples or a constant side carry no information and are skipped.
"""
from __future__ import annotations

import numpy as np


def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(-1)


def mse(pred: np.ndarray, label: np.ndarray) -> float:
    p, y = _flat(pred), _flat(label)
    return float(np.mean((p - y) ** 2)) if p.size else float("nan")


def directional_accuracy(pred: np.ndarray, label: np.ndarray) -> float:
    """Share of samples whose predicted sign matches the label's; zero labels have no direction."""
    p, y = _flat(pred), _flat(label)
    moved = y != 0
    if not moved.any():
        return float("nan")
    return float(np.mean(np.sign(p[moved]) == np.sign(y[moved])))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = _flat(a), _flat(b)
    if a.size < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt(np.sum(da * da) * np.sum(db * db))
    return float(np.sum(da * db) / denom) if denom > 0 else float("nan")


def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties sharing their average rank (scipy's ``rankdata`` default)."""
    a = _flat(a)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    starts = np.r_[True, sorted_a[1:] != sorted_a[:-1]]
    group = np.cumsum(starts) - 1
    bounds = np.r_[np.flatnonzero(starts), a.size]
    avg = (bounds[:-1] + bounds[1:] + 1) / 2.0  # mean of 1-based positions start+1 .. end
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = avg[group]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return pearson(rankdata(a), rankdata(b))


def per_date_ic(
    pred: np.ndarray, label: np.ndarray, dates: np.ndarray, rank: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(dates, ic)`` for each distinct date in sorted order; NaN where a date has no information."""
    p, y, d = _flat(pred), _flat(label), np.asarray(dates).reshape(-1)
    if not (p.size == y.size == d.size):
        raise ValueError(f"pred, label and dates differ in length: {p.size}, {y.size}, {d.size}")
    order = np.argsort(d, kind="mergesort")
    p, y, d = p[order], y[order], d[order]
    uniq, starts = np.unique(d, return_index=True)
    ends = np.r_[starts[1:], d.size]
    corr = spearman if rank else pearson
    ic = np.array([corr(p[s:e], y[s:e]) for s, e in zip(starts, ends)], dtype=np.float64)
    return uniq, ic


def _mean_or_nan(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def ic(pred: np.ndarray, label: np.ndarray, dates: np.ndarray) -> float:
    """Mean over dates of the cross-sectional Pearson correlation."""
    return _mean_or_nan(per_date_ic(pred, label, dates)[1])


def rank_ic(pred: np.ndarray, label: np.ndarray, dates: np.ndarray) -> float:
    """Mean over dates of the cross-sectional Spearman correlation."""
    return _mean_or_nan(per_date_ic(pred, label, dates, rank=True)[1])


def icir(per_date: np.ndarray) -> float:
    """Mean IC over its standard deviation (ddof=1) across dates: how steady the signal is."""
    finite = np.asarray(per_date, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2 or finite.std(ddof=1) == 0:
        return float("nan")
    return float(finite.mean() / finite.std(ddof=1))


def forecast_metrics(pred: np.ndarray, label: np.ndarray, dates: np.ndarray) -> dict[str, float]:
    """The per-epoch validation summary: mse, ic, rank_ic, icir, dir_acc, n."""
    _, daily = per_date_ic(pred, label, dates)
    return {
        "mse": mse(pred, label),
        "ic": _mean_or_nan(daily),
        "rank_ic": rank_ic(pred, label, dates),
        "icir": icir(daily),
        "dir_acc": directional_accuracy(pred, label),
        "n": int(_flat(pred).size),
    }
