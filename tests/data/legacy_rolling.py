"""The rolling statistics as they were computed before the single-pass kernels (numpy and pandas):
the reference the kernels are held against, row by row, in ``test_feature_engine.py``."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from app.features.panel import QUANTILES, Rolling, shift


def prefix_sums(a: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Cumulative sums down each column (NaN counted as 0) and the running NaN count (None if no NaN)."""
    nan = np.isnan(a)
    if not nan.any():
        return np.cumsum(a, axis=0), None
    return np.cumsum(np.where(nan, 0.0, a), axis=0), np.cumsum(nan, axis=0, dtype=np.int32)


def window_sum(prefix: tuple[np.ndarray, np.ndarray | None], d: int) -> np.ndarray:
    """Sum of each full trailing window of ``d`` rows; NaN where the window is short or holds a NaN."""
    cum, nans = prefix
    out = np.empty_like(cum)
    out[: d - 1] = np.nan
    if cum.shape[0] >= d:
        out[d - 1] = cum[d - 1]
        np.subtract(cum[d:], cum[:-d], out=out[d:])
    if nans is not None:
        bad = np.empty_like(nans)
        bad[:d] = nans[:d]
        np.subtract(nans[d:], nans[:-d], out=bad[d:])
        out[bad > 0] = np.nan
    return out


class LegacyRolling(Rolling):
    """The production :class:`Rolling` (its memo, derived series and the statistics built from the
    primitives: mean, var, std, corr) with the primitives computed the previous way.

    Sums and covariances come from cumulative sums of values centred on each symbol's first bar
    (a past value, so row t still depends only on rows <= t); the error this leaves is far below
    float32 resolution. Max/min are pandas', quantiles and ranks come from sorted windows.
    """

    def _first(self, name: str) -> np.ndarray:
        """Each column's first finite value (its symbol's first bar; 0 if none)."""
        key = ("first", name)
        if key not in self._memo:
            a = self[name]
            finite = np.isfinite(a)
            rows = finite.argmax(axis=0)
            self._memo[key] = np.where(finite.any(axis=0), a[rows, np.arange(a.shape[1])], 0.0)
        return self._memo[key]

    def _centred(self, name: str) -> np.ndarray:
        """The series minus its first value: keeps cumulative sums small."""
        key = ("centred", name)
        if key not in self._memo:
            self._memo[key] = self[name] - self._first(name)
        return self._memo[key]

    def _prefix(self, name: str, other: str | None = None):
        key = ("prefix", name, other)
        if key not in self._memo:
            x = self._centred(name)
            self._memo[key] = prefix_sums(x if other is None else x * self._centred(other))
        return self._memo[key]

    def _csum(self, name: str, d: int) -> np.ndarray:
        return window_sum(self._prefix(name), d)

    def _sum(self, name: str, d: int) -> np.ndarray:
        return self.stat("csum", name, d) + d * self._first(name)

    def _cov(self, name: str, d: int, other: str) -> np.ndarray:
        sxy = window_sum(self._prefix(name, other), d)
        return (sxy - self.stat("csum", name, d) * self.stat("csum", other, d) / d) / (d - 1)

    _corr = Rolling._corr_of_moments  # from the covariances, the previous way

    def _max(self, name: str, d: int) -> np.ndarray:
        return _pandas_rolling(self[name], d, "max")

    def _min(self, name: str, d: int) -> np.ndarray:
        return _pandas_rolling(self[name], d, "min")

    def _quantile(self, name: str, d: int, q: float) -> np.ndarray:
        """Linear-interpolated quantile (pandas/qlib ``Quantile``) from sorted windows."""
        if q not in QUANTILES:
            return _pandas_rolling(self[name], d, "quantile", q)
        a = self[name]
        outs = {p: np.full_like(a, np.nan) for p in QUANTILES}
        if a.shape[0] >= d:
            for j in range(0, a.shape[1], 16):  # column chunks bound the sorted copy's memory
                srt = np.sort(np.lib.stride_tricks.sliding_window_view(a[:, j : j + 16], d, axis=0), axis=-1)
                for p in QUANTILES:
                    pos = p * (d - 1)
                    lo = int(np.floor(pos))
                    hi = min(lo + 1, d - 1)
                    outs[p][d - 1 :, j : j + 16] = srt[..., lo] + (srt[..., hi] - srt[..., lo]) * (pos - lo)
        for p in QUANTILES:
            self._memo[("quantile", name, d, (p,))] = outs[p]
        return outs[q]

    def _rank(self, name: str, d: int) -> np.ndarray:
        """Percentile of the last value in its window, ties averaged (qlib ``Rank``, scipy's 'rank')."""
        a = self[name]
        below = np.zeros_like(a)
        at_or_below = np.zeros_like(a)
        for k in range(d):
            past = shift(a, k)
            below += past < a
            at_or_below += past <= a
        out = (below + at_or_below + 1.0) / (2.0 * d)
        out[np.isnan(window_sum(prefix_sums(a), d))] = np.nan
        return out

    def _slope(self, name: str, d: int) -> np.ndarray:
        """OLS slope of y on 0..d-1 over each window, as a fixed-weight moving sum."""
        y = self._centred(name)
        t = np.arange(d, dtype=np.float64) - (d - 1) / 2.0
        w = t / float((t * t).sum())
        out = np.full_like(y, np.nan)
        n = y.shape[0] - d + 1
        if n <= 0:
            return out
        acc = w[0] * y[0:n]
        for k in range(1, d):
            acc += w[k] * y[k : k + n]
        out[d - 1 :] = acc
        return out

    def _idxmax(self, name: str, d: int) -> np.ndarray:
        return self._argext(self[name], d, True)

    def _idxmin(self, name: str, d: int) -> np.ndarray:
        return self._argext(self[name], d, False)

    @staticmethod
    def _argext(a: np.ndarray, d: int, is_max: bool) -> np.ndarray:
        """1-based position of the window's max (min) counted from its oldest bar (qlib IdxMax)."""
        out = np.full_like(a, np.nan)
        if a.shape[0] < d:
            return out
        view = np.lib.stride_tricks.sliding_window_view(a, d, axis=0)
        idx = (view.argmax(axis=-1) if is_max else view.argmin(axis=-1)) + 1.0
        idx[np.isnan(view).any(axis=-1)] = np.nan
        out[d - 1 :] = idx
        return out


def _pandas_rolling(a: np.ndarray, d: int, op: str, *args: Any) -> np.ndarray:
    res = getattr(pd.DataFrame(a, copy=False).rolling(d, min_periods=d), op)(*args)
    return np.asarray(res.to_numpy(dtype=np.float64), order="F")
