"""Whole symbols of a batch as (time, symbol) panels, and the shared rolling statistics on them.

A batch holds several complete symbols sorted by (symbol, ts). Each symbol becomes one column of a
(T, S) array, left-aligned (row 0 is its first bar) and padded with NaN after its last bar. Every
rolling operator runs down a column, so a window can never hold two symbols, and the padding sits
only after a symbol's last bar, so it cannot reach back into a window that ends on a real bar.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

import numpy as np

from app.features import rolling_kernels as kernels
from app.features import tape
from app.features.elementwise import divide_finite


@dataclass(frozen=True)
class Layout:
    """Where each long row sits in the panel: ``panel[pos[i], col[i]]`` is row ``i``."""

    symbols: list[str]
    starts: np.ndarray  # first long row of each symbol
    lengths: np.ndarray  # rows of each symbol
    pos: np.ndarray
    col: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.lengths.max()) if len(self.lengths) else 0, len(self.symbols))

    @classmethod
    def of(cls, symbols: np.ndarray) -> Layout:
        """Layout of a long ``symbol`` column already grouped by symbol."""
        n = len(symbols)
        if n == 0:
            return cls([], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        change = np.flatnonzero(symbols[1:] != symbols[:-1]) + 1
        starts = np.concatenate([[0], change]).astype(np.int64)
        lengths = np.diff(np.concatenate([starts, [n]])).astype(np.int64)
        col = np.repeat(np.arange(len(starts)), lengths)
        pos = np.arange(n) - np.repeat(starts, lengths)
        return cls([str(s) for s in symbols[starts]], starts, lengths, pos, col)

    def to_panel(self, values: np.ndarray) -> np.ndarray:
        """The (T, S) Fortran-ordered panel of a long column; a view of it (no copy, read-only when
        ``values`` is) when every series has the same length, as full-history daily bars do."""
        if len(self.lengths) and (self.lengths == self.lengths[0]).all() and values.ndim == 1:
            return values.reshape(len(self.lengths), -1).T
        out = np.full(self.shape, np.nan, order="F")
        for j, (start, n) in enumerate(zip(self.starts, self.lengths)):
            out[:n, j] = values[start : start + n]
        return out

    def to_long(self, panel: np.ndarray) -> np.ndarray:
        if len(self.lengths) and (self.lengths == panel.shape[0]).all():
            return np.asfortranarray(panel).T.reshape(-1)
        return np.concatenate([panel[:n, j] for j, n in enumerate(self.lengths)])


def shift(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` delayed by ``n`` rows (``Ref(a, n)``): row t holds row t-n; NaN before the start."""
    if isinstance(a, tape.Traced):  # the newest-bar path tracing the derived series
        return a.tape.shift(a, n)
    out = np.full_like(a, np.nan)
    if n < a.shape[0]:
        out[n:] = a[: a.shape[0] - n]
    return out


def lead(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` advanced by ``n`` rows: row t holds row t+n (labels only: this looks ahead)."""
    out = np.full_like(a, np.nan)
    if n < a.shape[0]:
        out[: a.shape[0] - n] = a[n:]
    return out


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN, not inf, where den is 0: one fused pass over two same-layout float64
    arrays (a panel or a column), numpy's broadcasting otherwise."""
    if isinstance(num, tape.Traced) or isinstance(den, tape.Traced):  # the newest-bar path tracing formulas
        return tape.safe_div(num, den)
    if _flat_pair(num, den):
        if num.flags.c_contiguous and den.flags.c_contiguous:
            return divide_finite(num.reshape(-1), den.reshape(-1)).reshape(num.shape)
        # Fortran panels: run down their memory order, hand back a Fortran panel
        return divide_finite(num.T.reshape(-1), den.T.reshape(-1)).reshape(num.shape[::-1]).T
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(num / den, dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def _flat_pair(a: np.ndarray, b: np.ndarray) -> bool:
    """Both float64 arrays of one shape laid out alike (both C- or both Fortran-contiguous)."""
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.shape != b.shape:
        return False
    if a.dtype != np.float64 or b.dtype != np.float64 or a.ndim > 2:
        return False
    return (a.flags.c_contiguous and b.flags.c_contiguous) or (a.flags.f_contiguous and b.flags.f_contiguous)


QUANTILES = (0.2, 0.8)  # computed together from one sorted pass over each window


class Rolling:
    """Full-window rolling statistics of named panels, computed once and shared by the features.

    A window is defined only when all its ``d`` values are (qlib's operators use
    ``min_periods=1``; here warm-up rows are NaN instead, so they can be masked explicitly). The
    statistics are the single-pass kernels of :mod:`app.features.rolling_kernels` (the newest-bar
    path traces the formulas and computes the last row's instead: :class:`app.features.newest_stats.NewestRolling`).
    """

    def __init__(self, series: dict[str, np.ndarray], derived: dict[str, Callable[[Rolling], np.ndarray]]) -> None:
        self._series = {k: np.asfortranarray(v, dtype=np.float64) for k, v in series.items()}
        self._derived = derived
        self._memo: dict[tuple, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._series:
            self._series[name] = np.asfortranarray(self._derived[name](self), dtype=np.float64)
        return self._series[name]

    def ref(self, name: str, n: int) -> np.ndarray:
        """``name`` ``n`` rows back (qlib ``Ref``)."""
        return shift(self[name], n)

    def stat(self, op: str, name: str, d: int, *args: Any) -> np.ndarray:
        key = (op, name, d, args)
        if key not in self._memo:
            self._memo[key] = getattr(self, f"_{op}")(name, d, *args)
        return self._memo[key]

    def _sum(self, name: str, d: int) -> np.ndarray:
        return kernels.rolling_sum(self[name], d)

    def _mean(self, name: str, d: int) -> np.ndarray:
        return self.stat("sum", name, d) / d

    def _cov(self, name: str, d: int, other: str) -> np.ndarray:
        return kernels.rolling_cov(self[name], self[other], d)

    def _var(self, name: str, d: int) -> np.ndarray:
        """Variance floored at 0 (rounding can take a running variance just below it)."""
        return np.maximum(self.stat("cov", name, d, name), 0.0)

    def _std(self, name: str, d: int) -> np.ndarray:
        return np.sqrt(self.stat("var", name, d))

    def _corr(self, name: str, d: int, other: str) -> np.ndarray:
        """Pearson correlation in one fused kernel pass (bit for bit :meth:`_corr_of_moments`)."""
        return kernels.rolling_corr(self[name], self[other], d)

    # A subclass that computes covariances its own way (the newest-bar path, the tests' reference
    # engine) builds corr from its ``_cov`` with this instead of the fused kernel above.
    def _corr_of_moments(self, name: str, d: int, other: str) -> np.ndarray:
        den = np.sqrt(self.stat("var", name, d) * self.stat("var", other, d))
        return safe_div(self.stat("cov", name, d, other), den)

    def _extreme(self, name: str, d: int, is_max: bool) -> None:
        """The max (min) and its position from one kernel pass, memoised under their own keys."""
        values, at = kernels.rolling_extreme(self[name], d, is_max)
        self._memo[("max" if is_max else "min", name, d, ())] = values
        self._memo[("idxmax" if is_max else "idxmin", name, d, ())] = at

    def _max(self, name: str, d: int) -> np.ndarray:
        self._extreme(name, d, True)
        return self._memo[("max", name, d, ())]

    def _min(self, name: str, d: int) -> np.ndarray:
        self._extreme(name, d, False)
        return self._memo[("min", name, d, ())]

    def _order(self, name: str, d: int, qs: tuple[float, ...]) -> None:
        """Quantiles ``qs`` and the rank of one sorted pass, memoised under their own keys."""
        quant, rank = kernels.rolling_order(self[name], d, np.array(qs, np.float64))
        for q, values in zip(qs, quant):
            self._memo[("quantile", name, d, (q,))] = values
        self._memo[("rank", name, d, ())] = rank

    def _quantile(self, name: str, d: int, q: float) -> np.ndarray:
        """Linear-interpolated quantile (pandas/qlib ``Quantile``)."""
        self._order(name, d, tuple(sorted({q, *QUANTILES})))
        return self._memo[("quantile", name, d, (q,))]

    def _rank(self, name: str, d: int) -> np.ndarray:
        """Percentile of the last value in its window, ties averaged (qlib ``Rank``, scipy's 'rank')."""
        self._order(name, d, QUANTILES)
        return self._memo[("rank", name, d, ())]

    def _slope(self, name: str, d: int) -> np.ndarray:
        """OLS slope of y on 0..d-1 over each window."""
        return kernels.rolling_slope(self[name], d)

    def _idxmax(self, name: str, d: int) -> np.ndarray:
        """1-based position of the window's first max, from its oldest row (qlib ``IdxMax``)."""
        self._extreme(name, d, True)
        return self._memo[("idxmax", name, d, ())]

    def _idxmin(self, name: str, d: int) -> np.ndarray:
        self._extreme(name, d, False)
        return self._memo[("idxmin", name, d, ())]
