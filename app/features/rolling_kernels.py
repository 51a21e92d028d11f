"""Single-pass trailing-window kernels on (time, symbol) panels, compiled by numba.

Every kernel walks down one column (one symbol) and writes row ``t`` from rows ``t-d+1 .. t``
only: a window that is short (the first ``d-1`` rows) or holds a NaN gives NaN, as pandas'
``rolling(d, min_periods=d)`` does. Sums and moments are running sums of values centred on the
column's first finite value (a past value: row ``t`` still depends only on rows ``<= t``), which
keeps them small (the correlation keeps both series' sums and the pair's in one pass); order
statistics keep the window sorted (insert and remove, ``O(d)`` each), the max and min a monotone
queue (which also gives the extreme's position).

``cache=True`` writes the compiled code next to this file (``__pycache__``), so a process that
imports it after the first one, a Ray worker included, loads it instead of compiling (measured on
the 2-core machine: 12-18 s to compile every kernel once, 0.5-1.3 s to load them; docs/BENCHMARKS.md).
"""
from __future__ import annotations

import numpy as np
from numba import njit

RESYNC = 64  # rows between exact recomputations of a running slope's sums


@njit(cache=True)
def _first_finite(a: np.ndarray, j: int) -> float:
    for i in range(a.shape[0]):
        if np.isfinite(a[i, j]):
            return a[i, j]
    return 0.0


@njit(cache=True)
def rolling_sum(a: np.ndarray, d: int) -> np.ndarray:
    """Sum of each full window of ``d`` rows."""
    n, m = a.shape
    out = np.full((m, n), np.nan).T  # Fortran order, like the panels
    for j in range(m):
        c = _first_finite(a, j)
        s, bad = 0.0, 0
        for i in range(n):
            x = a[i, j]
            if np.isnan(x):
                bad += 1
            else:
                s += x - c
            if i >= d:
                y = a[i - d, j]
                if np.isnan(y):
                    bad -= 1
                else:
                    s -= y - c
            if i >= d - 1 and bad == 0:
                out[i, j] = s + d * c
    return out


@njit(cache=True)
def rolling_cov(x: np.ndarray, y: np.ndarray, d: int) -> np.ndarray:
    """Sample covariance (ddof 1) of each full window of two panels (``x is y``: the variance)."""
    n, m = x.shape
    out = np.full((m, n), np.nan).T  # Fortran order, like the panels
    for j in range(m):
        cx, cy = _first_finite(x, j), _first_finite(y, j)
        sx, sy, sxy, bad = 0.0, 0.0, 0.0, 0
        for i in range(n):
            u, v = x[i, j], y[i, j]
            if np.isnan(u) or np.isnan(v):
                bad += 1
            else:
                sx += u - cx
                sy += v - cy
                sxy += (u - cx) * (v - cy)
            if i >= d:
                u, v = x[i - d, j], y[i - d, j]
                if np.isnan(u) or np.isnan(v):
                    bad -= 1
                else:
                    sx -= u - cx
                    sy -= v - cy
                    sxy -= (u - cx) * (v - cy)
            if i >= d - 1 and bad == 0:
                out[i, j] = (sxy - sx * sy / d) / (d - 1)
    return out


@njit(cache=True)
def _nonneg(v: float) -> float:
    """``np.maximum(v, 0.0)``: NaN stays NaN, and -0.0 becomes +0.0 as numpy gives it."""
    return v if v > 0.0 or np.isnan(v) else 0.0


@njit(cache=True)
def _corr_of(cxy: float, vx: float, vy: float) -> float:
    """``cxy / sqrt(max(vx, 0) * max(vy, 0))``, NaN where that is not a finite number (a variance of
    0 included), as ``safe_div`` gives it."""
    den = np.sqrt(_nonneg(vx) * _nonneg(vy))
    if not den > 0.0:  # 0 or NaN: the quotient would be inf or NaN
        return np.nan
    r = cxy / den
    return r if np.isfinite(r) else np.nan


@njit(cache=True)
def rolling_corr(x: np.ndarray, y: np.ndarray, d: int) -> np.ndarray:
    """Pearson correlation of each full window of two panels in one pass.

    Equal, bit for bit, to :func:`rolling_cov` of ``(x, y)`` over the square root of the product
    of ``(x, x)``'s and ``(y, y)``'s: each of the three keeps its own running sums over the rows it
    counts (a NaN in ``y`` leaves ``x``'s own sums untouched), so every sum has the same history.
    """
    n, m = x.shape
    out = np.empty((m, n)).T  # Fortran order, like the panels
    for j in range(m):
        cx, cy = _first_finite(x, j), _first_finite(y, j)
        sx, sxx, sy, syy = 0.0, 0.0, 0.0, 0.0  # each series' own sums (rows where it is a number)
        px, py, pxy, bad = 0.0, 0.0, 0.0, 0  # the pair's (rows where both are); bad: NaN rows of either
        for i in range(n):
            for k in (i, i - d):  # the row that enters, then (once the window is full) the one that leaves
                if k < 0:
                    continue
                sign = 1.0 if k == i else -1.0
                u, v = x[k, j] - cx, y[k, j] - cy
                if not np.isnan(u):
                    sx += sign * u
                    sxx += sign * (u * u)
                if not np.isnan(v):
                    sy += sign * v
                    syy += sign * (v * v)
                if np.isnan(u) or np.isnan(v):
                    bad += int(sign)
                else:
                    px += sign * u
                    py += sign * v
                    pxy += sign * (u * v)
            if i >= d - 1 and bad == 0:
                vx = (sxx - sx * sx / d) / (d - 1)
                vy = (syy - sy * sy / d) / (d - 1)
                out[i, j] = _corr_of((pxy - px * py / d) / (d - 1), vx, vy)
            else:
                out[i, j] = np.nan
    return out


@njit(cache=True)
def rolling_extreme(a: np.ndarray, d: int, is_max: bool) -> tuple[np.ndarray, np.ndarray]:
    """Max (or min) of each full window and the 1-based position of its first occurrence, counted
    from the window's oldest row (qlib ``IdxMax``/``IdxMin``), from one monotone queue.

    The queue holds row indices (to expire them) and their values side by side, so a comparison
    reads the queue, not the panel through an index. Only strictly smaller (larger) values leave it
    when a row enters, so of equal values the oldest is ahead: the head is the first extreme.
    """
    n, m = a.shape
    out, at = np.empty((m, n)).T, np.empty((m, n)).T  # Fortran order, like the panels
    rows, vals = np.empty(n, np.int64), np.empty(n)
    for j in range(m):
        head, tail, last_nan = 0, 0, -1
        for i in range(n):
            x = a[i, j]
            if np.isnan(x):
                last_nan = i
                head = tail = 0
            else:
                if is_max:
                    while tail > head and vals[tail - 1] < x:
                        tail -= 1
                else:
                    while tail > head and vals[tail - 1] > x:
                        tail -= 1
                rows[tail], vals[tail] = i, x
                tail += 1
            if tail > head and rows[head] <= i - d:  # one row leaves per step: at most one to expire
                head += 1
            if i >= d - 1 and last_nan <= i - d:
                out[i, j], at[i, j] = vals[head], rows[head] - (i - d + 1) + 1.0
            else:
                out[i, j], at[i, j] = np.nan, np.nan
    return out, at


@njit(cache=True)
def _left(buf: np.ndarray, k: int, x: float) -> int:
    """First index of the sorted ``buf[:k]`` holding a value ``>= x`` (``searchsorted``, side
    'left'), without the slice ``np.searchsorted`` would need."""
    lo, hi = 0, k
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _replace(buf: np.ndarray, k: int, old: float, new: float) -> int:
    """In the sorted ``buf[:k]``, replace one ``old`` by ``new`` and move it to its sorted place;
    that place (the rank reads its ties from there instead of searching again)."""
    p = _left(buf, k, old)
    if p > 0 and buf[p - 1] > new:
        while p > 0 and buf[p - 1] > new:
            buf[p] = buf[p - 1]
            p -= 1
    else:
        while p < k - 1 and buf[p + 1] < new:
            buf[p] = buf[p + 1]
            p += 1
    buf[p] = new
    return p


@njit(cache=True)
def _fill(buf: np.ndarray, a: np.ndarray, i: int, d: int, j: int) -> int:
    """Sort the window ending at row ``i`` into ``buf``; its length, or -1 when it holds a NaN."""
    for k in range(d):
        x = a[i - d + 1 + k, j]
        if np.isnan(x):
            return -1
        buf[k] = x
    buf[:d].sort()
    return d


@njit(cache=True)
def _rank(buf: np.ndarray, d: int, p: int) -> float:
    """Percentile rank of ``buf[p]`` in the sorted ``buf[:d]``, ties averaged: its equal neighbours
    are next to it, so counting them gives both ``searchsorted`` sides."""
    x = buf[p]
    below, above = p, p + 1
    while below > 0 and buf[below - 1] == x:
        below -= 1
    while above < d and buf[above] == x:
        above += 1
    return (below + above + 1.0) / (2.0 * d)


@njit(cache=True)
def rolling_order(a: np.ndarray, d: int, qs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear-interpolated quantiles ``qs`` of each full window, and the percentile rank of its last
    value with ties averaged: ``(below + at_or_below + 1) / (2d)`` (qlib ``Rank``)."""
    n, m = a.shape
    nq = len(qs)
    quant = np.empty((nq, m, n)).transpose(0, 2, 1)  # Fortran-ordered panels
    rank = np.empty((m, n)).T
    lo, hi, frac = np.empty(nq, np.int64), np.empty(nq, np.int64), np.empty(nq)
    for r in range(nq):  # where each quantile falls: the same for every window
        pos = qs[r] * (d - 1)
        lo[r] = int(np.floor(pos))
        hi[r] = min(lo[r] + 1, d - 1)
        frac[r] = pos - lo[r]
    buf = np.empty(d)
    for j in range(m):
        ok = -1  # buf holds the sorted previous window when ok == d
        for i in range(n):
            if i < d - 1:
                _blank(quant, rank, i, j)
                continue
            x = a[i, j]
            if ok == d and not np.isnan(x):
                p = _replace(buf, d, a[i - d, j], x)
            else:
                ok = _fill(buf, a, i, d, j)
                if ok < 0:
                    _blank(quant, rank, i, j)
                    continue
                p = _left(buf, d, x)
            for r in range(nq):
                quant[r, i, j] = buf[lo[r]] + (buf[hi[r]] - buf[lo[r]]) * frac[r]
            rank[i, j] = _rank(buf, d, p)
    return quant, rank


@njit(cache=True)
def _blank(quant: np.ndarray, rank: np.ndarray, i: int, j: int) -> None:
    """Row ``i`` of column ``j`` has no full window: NaN quantiles and rank."""
    for r in range(quant.shape[0]):
        quant[r, i, j] = np.nan
    rank[i, j] = np.nan


@njit(cache=True)
def rolling_slope(a: np.ndarray, d: int) -> np.ndarray:
    """OLS slope of each full window on 0..d-1, from running sums of y and k*y.

    The slope is a difference of two sums that nearly cancel, so the sums are recomputed exactly,
    centred on the window's oldest value, every :data:`RESYNC` rows: no rounding drift builds up.
    """
    n, m = a.shape
    out = np.full((m, n), np.nan).T  # Fortran order, like the panels
    half = (d - 1) / 2.0
    norm = d * (d * d - 1) / 12.0
    for j in range(m):
        c = _first_finite(a, j)
        s1, s2, bad = 0.0, 0.0, 0
        for i in range(n):
            x = a[i, j] - c
            if i >= d:  # the window slides: every older value's k drops by one, the oldest leaves
                y = a[i - d, j] - c
                if np.isnan(y):
                    bad -= 1
                else:
                    s1 -= y
                s2 -= s1
            if np.isnan(x):
                bad += 1
            else:
                s1 += x
                s2 += min(i, d - 1) * x
            if i >= d - 1 and bad == 0:
                if (i - d + 1) % RESYNC == 0:  # exact sums again, centred on the window's oldest value
                    c = a[i - d + 1, j]
                    s1, s2 = 0.0, 0.0
                    for k in range(d):
                        s1 += a[i - d + 1 + k, j] - c
                        s2 += k * (a[i - d + 1 + k, j] - c)
                out[i, j] = (s2 - half * s1) / norm
    return out
