"""Every rolling statistic of the newest row, for all symbols, in one compiled call.

:class:`app.features.panel.Rolling` computes a statistic when a feature first asks for it: one kernel
call, with its own copy of the window, per statistic. For the newest row of 40 symbols that is
about 150 calls whose fixed cost is most of the time, so :class:`NewestRolling` asks the feature
formulas once (on placeholders) which primitive statistics they read, and then computes all of
them per call with :func:`window_stats`: one loop over (statistic, symbol), each reading the last
``d`` rows of one series. The definitions are those of :mod:`app.features.rolling_kernels` for a
window ending on the last row: NaN when the window is short or holds a NaN; moments from sums
centred on the window's first value, as the kernels centre theirs.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from app.features.panel import QUANTILES, Rolling

#: Primitive statistics and their codes in :func:`window_stats`; the others are built from these.
OPS = {"sum": 0, "cov": 1, "max": 2, "min": 3, "order": 4, "slope": 5, "idxmax": 6, "idxmin": 7}


@njit(cache=True)
def _trailing_numbers(series: np.ndarray) -> np.ndarray:
    """(series, symbols): how many of each column's last values are numbers (a window of ``d`` is whole
    when at least ``d`` are)."""
    k, m, n = series.shape
    out = np.zeros((k, m), np.int64)
    for s in range(k):
        for j in range(m):
            i = n - 1
            while i >= 0 and not np.isnan(series[s, j, i]):
                i -= 1
            out[s, j] = n - 1 - i
    return out


@njit(cache=True)
def _moment(x: np.ndarray, y: np.ndarray) -> float:
    """Sample covariance (ddof 1) from sums centred on the window's first values."""
    d = len(x)
    sx, sy, sxy = 0.0, 0.0, 0.0
    for k in range(d):
        u, v = x[k] - x[0], y[k] - y[0]
        sx += u
        sy += v
        sxy += u * v
    return (sxy - sx * sy / d) / (d - 1)


@njit(cache=True)
def _slope(y: np.ndarray) -> float:
    d = len(y)
    half, acc = (d - 1) / 2.0, 0.0
    for k in range(d):
        acc += (k - half) * (y[k] - y[0])
    return acc / (d * (d * d - 1) / 12.0)


@njit(cache=True)
def _argext(w: np.ndarray, is_max: bool) -> float:
    best, at = w[0], 0
    for k in range(1, len(w)):
        if (w[k] > best) if is_max else (w[k] < best):
            best, at = w[k], k
    return at + 1.0


@njit(cache=True)
def _order(w: np.ndarray, qs: np.ndarray, buf: np.ndarray, out: np.ndarray, row: int, j: int) -> None:
    """Quantiles ``qs`` into rows ``row..``, the rank of the last value after them (``buf``: scratch)."""
    d = len(w)
    srt = buf[:d]
    srt[:] = w
    srt.sort()
    for r in range(len(qs)):
        pos = qs[r] * (d - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, d - 1)
        out[row + r, j] = srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)
    below = np.searchsorted(srt, w[d - 1], side="left")
    at_or_below = np.searchsorted(srt, w[d - 1], side="right")
    out[row + len(qs), j] = (below + at_or_below + 1.0) / (2.0 * d)


@njit(cache=True)
def window_stats(series: np.ndarray, plan: np.ndarray, qs: np.ndarray, n_out: int) -> np.ndarray:
    """Statistics of the windows ending on the last row: ``series`` is (series, symbols, rows);
    each ``plan`` row is (op, series, other series, d, first output row); returns (n_out, symbols)."""
    _, m, n = series.shape
    out = np.full((n_out, m), np.nan)
    whole = _trailing_numbers(series)
    buf = np.empty(n)
    for p in range(plan.shape[0]):
        op, s, o, d, row = plan[p, 0], plan[p, 1], plan[p, 2], plan[p, 3], plan[p, 4]
        for j in range(m):
            if whole[s, j] < d or (op == 1 and whole[o, j] < d):
                continue
            w = series[s, j, n - d :]
            if op == 0:
                out[row, j] = w.sum()
            elif op == 1:
                out[row, j] = _moment(w, series[o, j, n - d :])
            elif op == 2:
                out[row, j] = w.max()
            elif op == 3:
                out[row, j] = w.min()
            elif op == 4:
                _order(w, qs, buf, out, row, j)
            elif op == 5:
                out[row, j] = _slope(w)
            else:
                out[row, j] = _argext(w, op == 6)
    return out


class _Series:
    """The whole trailing series of a :class:`NewestRolling`: what the derived series are built from."""

    def __init__(self, ctx: NewestRolling) -> None:
        self._ctx = ctx

    def __getitem__(self, name: str) -> np.ndarray:
        return self._ctx.series(name)


class NewestRolling(Rolling):
    """:class:`Rolling` of the newest row only: ``r[name]``, ``r.ref`` and ``r.stat`` give (1, symbols)
    arrays, and every primitive statistic the features read comes from one :func:`window_stats` call.

    ``NewestRolling.plan(run, derived, fields, n_rows)`` learns which primitives ``run(ctx)`` reads
    (the formulas ask for the same ones whatever the data); ``NewestRolling(panels, derived, plan)``
    then computes them all before the formulas run.
    """

    def __init__(self, series: dict[str, np.ndarray], derived: dict[str, Callable[[Rolling], np.ndarray]],
                 plan: list[tuple] | None = None) -> None:  # fmt: skip
        super().__init__(series, derived)
        self._whole = _Series(self)
        self._asked: list[tuple] = []
        self._plan = plan
        if plan is not None:
            self._compute(plan)

    @classmethod
    def plan(cls, run: Callable[[Rolling], object], derived: dict, fields: tuple[str, ...], n_rows: int) -> list[tuple]:
        """The primitive statistics ``run`` reads, in order, found by running it once on placeholders."""
        ctx = cls({k: np.ones((n_rows, 1)) for k in fields}, derived)
        run(ctx)
        return list(dict.fromkeys(ctx._asked))

    def series(self, name: str) -> np.ndarray:
        """The whole (rows, symbols) series ``name``, built on first use."""
        if name not in self._series:
            self._series[name] = np.asfortranarray(self._derived[name](self._whole), dtype=np.float64)
        return self._series[name]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.series(name)[-1:]

    def ref(self, name: str, n: int) -> np.ndarray:
        whole = self.series(name)
        return whole[-1 - n : whole.shape[0] - n] if n < whole.shape[0] else np.full_like(whole[-1:], np.nan)

    def _compute(self, plan: list[tuple]) -> None:
        names = list(dict.fromkeys(n for _, name, _, args in plan for n in (name, *args) if isinstance(n, str)))
        index = {n: i for i, n in enumerate(names)}
        qs = sorted({q for op, _, _, args in plan if op == "order" for q in args[0]})
        table, rows = [], 0
        for op, name, d, args in plan:
            table.append((OPS[op], index[name], index[args[0]] if op == "cov" else 0, d, rows))
            rows += len(qs) + 1 if op == "order" else 1
        stacked = np.stack([self.series(n).T for n in names])  # (series, symbols, rows): each window contiguous
        out = window_stats(stacked, np.array(table, np.int64).reshape(-1, 5), np.array(qs, np.float64), rows)
        for (op, name, d, args), row in zip(plan, (t[4] for t in table)):
            if op != "order":
                self._memo[(op, name, d, args)] = out[row : row + 1]
                continue
            for k, q in enumerate(qs):
                self._memo[("quantile", name, d, (q,))] = out[row + k : row + k + 1]
            self._memo[("rank", name, d, ())] = out[row + len(qs) : row + len(qs) + 1]

    def _primitive(self, op: str, name: str, d: int, *args) -> np.ndarray:
        key = (op, name, d, tuple(args))
        if key not in self._memo:  # planning: note what is asked, answer with a placeholder
            if self._plan is not None:
                raise KeyError(f"statistic {key} is not in the plan: plan with the same formulas")
            self._asked.append(key)
            self.series(name)
            if op == "cov":
                self.series(args[0])
            return np.full((1, self.series(name).shape[1]), np.nan)
        return self._memo[key]

    def _sum(self, name: str, d: int) -> np.ndarray:
        return self._primitive("sum", name, d)

    def _cov(self, name: str, d: int, other: str) -> np.ndarray:
        return self._primitive("cov", name, d, other)

    _corr = Rolling._corr_of_moments  # from the planned covariances, not the full-panel kernel

    def _max(self, name: str, d: int) -> np.ndarray:
        return self._primitive("max", name, d)

    def _min(self, name: str, d: int) -> np.ndarray:
        return self._primitive("min", name, d)

    def _slope(self, name: str, d: int) -> np.ndarray:
        return self._primitive("slope", name, d)

    def _idxmax(self, name: str, d: int) -> np.ndarray:
        return self._primitive("idxmax", name, d)

    def _idxmin(self, name: str, d: int) -> np.ndarray:
        return self._primitive("idxmin", name, d)

    def _order(self, name: str, d: int, qs: tuple[float, ...]) -> None:
        """Planning only (computed quantiles and ranks are in the memo already): one sorted window."""
        if ("rank", name, d, ()) not in self._memo:
            placeholder = self._primitive("order", name, d, qs)
            self._memo[("rank", name, d, ())] = placeholder
            for q in qs:
                self._memo[("quantile", name, d, (q,))] = placeholder
