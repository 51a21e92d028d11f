"""Every rolling feature of the newest row, for all symbols, in three compiled calls.

:class:`app.features.panel.Rolling` computes a statistic when a feature first asks for it: one kernel
call, with its own copy of the window, per statistic, and the formulas over them are numpy
operations. For the newest row of 40 symbols that is about 150 kernel calls and 600 operations on
40 values each, whose fixed cost is all of the time. :class:`NewestRolling` runs the feature
formulas once on traced values (:mod:`app.features.tape`), which records three programs: the
derived series (returns, gains, VWAP...) over the trailing rows, the primitive statistics the
formulas read (sums, covariances, max/min, sorted windows, slopes) and the formulas themselves.
A call then runs the derived series' tape, :func:`window_stats` (one loop over (statistic,
symbol), each reading the last ``d`` rows of one series) and the formulas' tape.

The statistics are those of :mod:`app.features.rolling_kernels` for a window ending on the last
row: NaN when the window is short or holds a NaN; moments from sums centred on the window's
first value, as the kernels centre theirs.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numba import njit

from app.features import tape as tp
from app.features.panel import QUANTILES, Rolling

#: Primitive statistics and their codes in :func:`window_stats`; the others are built from these.
OPS = {"sum": 0, "cov": 1, "max": 2, "min": 3, "order": 4, "slope": 5, "idxmax": 6, "idxmin": 7}


@njit(cache=True)
def _trailing_numbers(w: np.ndarray) -> int:
    """How many of the last values of ``w`` are numbers (a window of ``d`` is whole when at least ``d`` are)."""
    i = len(w) - 1
    while i >= 0 and not np.isnan(w[i]):
        i -= 1
    return len(w) - 1 - i


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
def window_stats(series: np.ndarray, plan: np.ndarray, qs: np.ndarray, out: np.ndarray) -> None:
    """Statistics of the windows ending on the last row into the rows of ``out`` (rows, symbols):
    ``series`` is (series, symbols, rows); each ``plan`` row is (op, series, other series, d, out row),
    an ``order`` filling one row per quantile of ``qs`` and then the rank."""
    n_series, m, n = series.shape
    whole = np.full((n_series, m), -1, np.int64)  # trailing numbers, counted where first needed
    buf = np.empty(n)
    for p in range(plan.shape[0]):
        op, s, o, d, row = plan[p, 0], plan[p, 1], plan[p, 2], plan[p, 3], plan[p, 4]
        for j in range(m):
            if whole[s, j] < 0:
                whole[s, j] = _trailing_numbers(series[s, j])
            if op == 1 and whole[o, j] < 0:
                whole[o, j] = _trailing_numbers(series[o, j])
            if whole[s, j] < d or (op == 1 and whole[o, j] < d):
                out[row : row + (len(qs) + 1 if op == 4 else 1), j] = np.nan
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


class _Tracing(Rolling):
    """The formulas' view while they are traced: the series (bar fields and derived) are registers of
    the series tape; a series' last row, a lag of it and every statistic are inputs of the formula tape."""

    def __init__(self, fields: tuple[str, ...], derived: dict[str, Callable[[Rolling], np.ndarray]]) -> None:
        super().__init__({}, derived)
        self.series_tape, self.tape = tp.Tape(), tp.Tape()
        self._series = {k: self.series_tape.register() for k in fields}
        self.loads: dict[tuple[str, int], tp.Traced] = {}  # (series, lag) -> formula register
        self.values: dict[str, tp.Traced] = {}  # values the caller computed (the newest indicators)
        self.stats: list[tuple[int, str, int, str, int]] = []  # (op, series, d, other, first register)
        self._whole = _Lookup(self.series)  # what the derived series are built from
        self.inputs = _Lookup(self.value)  # ``ctx.inputs[name]``: a formula input, as a mapping

    def series(self, name: str) -> tp.Traced:
        if name not in self._series:
            self._series[name] = self._derived[name](self._whole)
        return self._series[name]

    def _load(self, name: str, lag: int) -> tp.Traced:
        self.series(name)
        if (name, lag) not in self.loads:
            self.loads[(name, lag)] = self.tape.register()
        return self.loads[(name, lag)]

    def __getitem__(self, name: str) -> tp.Traced:
        return self._load(name, 0)

    def value(self, name: str) -> tp.Traced:
        """A formula input the caller passes to each call by ``name`` (one value per symbol)."""
        if name not in self.values:
            self.values[name] = self.tape.register()
        return self.values[name]

    def ref(self, name: str, n: int) -> tp.Traced:
        return self._load(name, int(n))

    def _primitive(self, op: str, name: str, d: int, other: str | None = None, n_regs: int = 1) -> tp.Traced:
        self.series(name)
        if other is not None:
            self.series(other)
        first = self.tape.register()
        for _ in range(n_regs - 1):  # an order's quantiles and rank: consecutive registers
            self.tape.register()
        self.stats.append((OPS[op], name, int(d), other or name, first.reg))
        return first

    _corr = Rolling._corr_of_moments  # from the traced covariances, not the full-panel kernel

    def _sum(self, name: str, d: int) -> tp.Traced:
        return self._primitive("sum", name, d)

    def _cov(self, name: str, d: int, other: str) -> tp.Traced:
        return self._primitive("cov", name, d, other)

    def _max(self, name: str, d: int) -> tp.Traced:
        return self._primitive("max", name, d)

    def _min(self, name: str, d: int) -> tp.Traced:
        return self._primitive("min", name, d)

    def _idxmax(self, name: str, d: int) -> tp.Traced:
        return self._primitive("idxmax", name, d)

    def _idxmin(self, name: str, d: int) -> tp.Traced:
        return self._primitive("idxmin", name, d)

    def _slope(self, name: str, d: int) -> tp.Traced:
        return self._primitive("slope", name, d)

    def _order(self, name: str, d: int, qs: tuple[float, ...]) -> None:
        if ("rank", name, d, ()) in self._memo:
            return
        if not set(qs) <= set(QUANTILES):
            raise ValueError(f"the newest-bar path computes the quantiles {QUANTILES}, not {qs}")
        first = self._primitive("order", name, d, n_regs=len(QUANTILES) + 1).reg
        for k, q in enumerate(QUANTILES):
            self._memo[("quantile", name, d, (q,))] = tp.Traced(self.tape, first + k)
        self._memo[("rank", name, d, ())] = tp.Traced(self.tape, first + len(QUANTILES))


class _Lookup:
    """``lookup[name]`` is ``fn(name)``: a :class:`_Tracing`'s series or inputs where formulas index a mapping."""

    def __init__(self, fn: Callable[[str], tp.Traced]) -> None:
        self._fn = fn

    def __getitem__(self, name: str) -> tp.Traced:
        return self._fn(name)


def _filler(tape: tp.Tape) -> Callable[[int], np.ndarray]:
    """The register file of ``width`` values for ``tape``, its constants filled in: one per width,
    kept from call to call (a fresh one is the better part of a megabyte for every call to fault in
    and scatter over the cache)."""
    regs, values = tape.constants()
    files: dict[int, np.ndarray] = {}

    def registers(width: int) -> np.ndarray:
        if width not in files:
            files.clear()
            files[width] = np.empty((tape.n_regs, width))
            files[width][regs] = values[:, None]
        return files[width]

    return registers


class NewestRolling:
    """``NewestRolling(run, derived, fields)(tails, values)``: the features ``run(ctx)`` yields, for the
    last row of every symbol, as a (features, symbols) array in the order of :attr:`names`.

    ``run`` is traced once (the formulas ask for the same statistics whatever the data); ``tails``
    maps each of ``fields`` to a (rows, symbols) array whose last row is the newest bar; ``values``
    holds one array of symbols for each name the formulas read with ``ctx.inputs[name]``. The register
    files are kept between calls: one call at a time per instance.
    """

    def __init__(self, run: Callable[[Rolling], Mapping[str, object]],
                 derived: dict[str, Callable[[Rolling], np.ndarray]], fields: tuple[str, ...]) -> None:  # fmt: skip
        ctx = _Tracing(fields, derived)
        results = dict(run(ctx))
        self.names = list(results)
        self.fields = fields
        self._out = np.array([ctx.tape.traced(v).reg for v in results.values()], np.int64)
        self._inputs = np.array([ctx.series(k).reg for k in fields], np.int64)
        self._series_code, self._series_regs = ctx.series_tape.program(), _filler(ctx.series_tape)
        self._code, self._regs = ctx.tape.program(), _filler(ctx.tape)
        self._values = [(reg.reg, name) for name, reg in ctx.values.items()]
        loads = [(reg.reg, ctx.series(name).reg, lag) for (name, lag), reg in ctx.loads.items()]
        self._load_to, self._load_from, self._lag = (np.array(x, np.int64) for x in zip(*loads))
        self._plan = np.array([(op, ctx.series(s).reg, ctx.series(o).reg, d, reg) for op, s, d, o, reg in ctx.stats],
                              np.int64).reshape(-1, 5)  # fmt: skip
        self._qs = np.array(QUANTILES, np.float64)

    def __call__(self, tails: Mapping[str, np.ndarray], values: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        rows, m = tails[self.fields[0]].shape
        series = self._series_regs(m * rows)
        for reg, k in zip(self._inputs, self.fields):
            series[reg].reshape(m, rows)[:] = tails[k].T
        tp.run(self._series_code, series, rows)
        series = series.reshape(-1, m, rows)  # (series, symbols, rows): each window contiguous
        regs = self._regs(m)
        at = rows - 1 - self._lag
        regs[self._load_to] = np.where((at >= 0)[:, None], series[self._load_from, :, np.maximum(at, 0)], np.nan)
        for reg, name in self._values:
            regs[reg] = values[name]  # type: ignore[index]
        window_stats(series, self._plan, self._qs, regs)
        tp.run(self._code, regs, 1)
        return regs[self._out]
