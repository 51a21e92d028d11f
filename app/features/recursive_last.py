"""The newest value of TA-Lib's recursive indicators (EMA, RSI, ATR/NATR, ADX, MACD) and OBV for every
column of a (bars, symbols) panel, in one compiled call per indicator.

These follow TA-Lib's algorithms step for step (default compatibility, no unstable period): the
same seeds (an SMA of the first ``n`` values; Wilder sums for ADX), the same recursions in the same
operation order and the same zero guards (``|x| < 1e-8``), so the value equals what
``talib.EMA(...)[-1]`` and the others give on that column; ``tests/data/test_newest_indicators.py``
holds them equal. TA-Lib stays the source: the batch features call it, and so does the newest-bar
path for a column these do not cover (a NaN after its first bar; :func:`starts` gives -1).

Like TA-Lib's Python wrapper, a column starts at its first row where every input is a number (the
NaN padding above a short history); a column with fewer rows than the look-back gives NaN.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from app.features.feature_config import IndicatorConfig

ZERO = 1e-8  # TA-Lib's TA_IS_ZERO


@njit(cache=True)
def starts(h: np.ndarray, l: np.ndarray, c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each column's first row: where high, low, close and volume all start being numbers and stay
    so (TA-Lib's start for every indicator here); the row count when all are NaN; -1 when the
    fields start apart or a NaN follows (those columns are left to TA-Lib itself)."""
    n, m = c.shape
    out = np.full(m, n, np.int64)
    for j in range(m):
        for i in range(n):
            nan = np.isnan(h[i, j]) + np.isnan(l[i, j]) + np.isnan(c[i, j]) + np.isnan(v[i, j])
            if out[j] == n and nan == 0:
                out[j] = i
            elif (out[j] < n and nan > 0) or (out[j] == n and 0 < nan < 4):
                out[j] = -1
                break
    return out


@njit(cache=True)
def _ema_tail(x: np.ndarray, lo: int, hi: int, p: int, k: float) -> float:
    """TA-Lib's EMA at row ``hi - 1`` of ``x[lo:hi]`` (seeded with the SMA of its first ``p`` values)."""
    if hi - lo < p:
        return np.nan
    acc = 0.0
    for i in range(lo, lo + p):
        acc += x[i]
    prev = acc / p
    for i in range(lo + p, hi):
        prev = ((x[i] - prev) * k) + prev
    return prev


@njit(cache=True)
def _from(start: np.ndarray, j: int, n: int, bars: int) -> int:
    """Where column ``j`` starts when only its last ``bars`` rows are read (-1 stays -1)."""
    return start[j] if start[j] < 0 else max(start[j], n - bars)


@njit(cache=True)
def _begin(start: np.ndarray, n: int, bars: int, need: int, b: np.ndarray) -> int:
    """Each column's first row into ``b`` (-1 where it has fewer than ``need`` rows); the earliest."""
    lo = n
    for j in range(len(b)):
        b[j] = _from(start, j, n, bars)
        if b[j] < 0 or n - b[j] < need:
            b[j] = -1
        else:
            lo = min(lo, b[j])
    return lo


@njit(cache=True)
def ema_last(c: np.ndarray, start: np.ndarray, periods: np.ndarray, bars: np.ndarray) -> np.ndarray:
    """(periods, symbols) newest EMA of ``c``, period ``r`` read from the last ``bars[r]`` rows.

    Like the others below, it steps all symbols a row at a time (symbols inner): their recursions
    are independent, so the CPU overlaps them (measured 3x faster than one symbol after another)."""
    n, m = c.shape
    out = np.full((len(periods), m), np.nan)
    prev, b = np.zeros(m), np.empty(m, np.int64)
    for r in range(len(periods)):
        p, k = periods[r], 2.0 / (periods[r] + 1)
        prev[:] = 0.0
        for i in range(_begin(start, n, bars[r], p, b), n):
            for j in range(m):
                if b[j] < 0 or i < b[j]:
                    continue
                if i < b[j] + p:  # the seed: the SMA of the first p values
                    prev[j] += c[i, j]
                    if i == b[j] + p - 1:
                        prev[j] /= p
                else:
                    prev[j] = ((c[i, j] - prev[j]) * k) + prev[j]
        for j in range(m):
            if b[j] >= 0:
                out[r, j] = prev[j]
    return out


@njit(cache=True)
def rsi_last(c: np.ndarray, start: np.ndarray, periods: np.ndarray, bars: np.ndarray) -> np.ndarray:
    """(periods, symbols) newest RSI (Wilder) of ``c``."""
    n, m = c.shape
    out = np.full((len(periods), m), np.nan)
    gain, loss, b = np.zeros(m), np.zeros(m), np.empty(m, np.int64)
    for r in range(len(periods)):
        p = periods[r]
        gain[:] = 0.0
        loss[:] = 0.0
        for i in range(_begin(start, n, bars[r], p + 1, b) + 1, n):
            for j in range(m):
                if b[j] < 0 or i <= b[j]:
                    continue
                d = c[i, j] - c[i - 1, j]
                if i > b[j] + p:
                    loss[j] *= p - 1
                    gain[j] *= p - 1
                if d < 0:
                    loss[j] -= d
                else:
                    gain[j] += d
                if i >= b[j] + p:
                    loss[j] /= p
                    gain[j] /= p
        for j in range(m):
            if b[j] >= 0:
                total = gain[j] + loss[j]
                out[r, j] = 100.0 * (gain[j] / total) if not (-ZERO < total < ZERO) else 0.0
    return out


@njit(cache=True)
def _true_range(h: np.ndarray, l: np.ndarray, c: np.ndarray, i: int, j: int) -> float:
    out = h[i, j] - l[i, j]
    up, down = abs(h[i, j] - c[i - 1, j]), abs(l[i, j] - c[i - 1, j])
    if up > out:
        out = up
    if down > out:
        out = down
    return out


@njit(cache=True)
def atr_last(h: np.ndarray, l: np.ndarray, c: np.ndarray, start: np.ndarray, periods: np.ndarray,
             bars: np.ndarray) -> np.ndarray:  # fmt: skip
    """(2, periods, symbols): newest ATR and NATR (Wilder)."""
    n, m = c.shape
    out = np.full((2, len(periods), m), np.nan)
    prev, b = np.zeros(m), np.empty(m, np.int64)
    for r in range(len(periods)):
        p = periods[r]
        prev[:] = 0.0
        for i in range(_begin(start, n, bars[r], p + 1, b) + 1, n):
            for j in range(m):
                if b[j] < 0 or i <= b[j]:
                    continue
                tr = _true_range(h, l, c, i, j)
                if i <= b[j] + p:  # the seed: the SMA of the first p true ranges
                    prev[j] += tr
                    if i == b[j] + p:
                        prev[j] /= p
                else:
                    prev[j] *= p - 1
                    prev[j] += tr
                    prev[j] /= p
        for j in range(m):
            if b[j] >= 0:
                last = c[n - 1, j]
                out[0, r, j] = prev[j]
                out[1, r, j] = (prev[j] / last) * 100.0 if not (-ZERO < last < ZERO) else 0.0
    return out


@njit(cache=True)
def adx_last(h: np.ndarray, l: np.ndarray, c: np.ndarray, start: np.ndarray, periods: np.ndarray,
             bars: np.ndarray) -> np.ndarray:  # fmt: skip
    """(periods, symbols) newest ADX: TA-Lib's Wilder sums of +DM, -DM and TR from each column's first
    row, then of DX (seeded with the mean of the first ``p``)."""
    n, m = c.shape
    out = np.full((len(periods), m), np.nan)
    plus, minus, tr, sum_dx, adx = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    b = np.empty(m, np.int64)
    for r in range(len(periods)):
        p = periods[r]
        for a in (plus, minus, tr, sum_dx, adx):
            a[:] = 0.0
        for i in range(_begin(start, n, bars[r], 2 * p, b) + 1, n):
            for j in range(m):
                if b[j] < 0 or i <= b[j]:
                    continue
                up, down = h[i, j] - h[i - 1, j], l[i - 1, j] - l[i, j]
                if i >= b[j] + p:
                    minus[j] -= minus[j] / p
                    plus[j] -= plus[j] / p
                # +DM or -DM (never both); selects, not branches: a random walk's moves defeat prediction
                minus[j] += down if (down > 0) & (up < down) else 0.0
                plus[j] += up if (up > 0) & (up > down) else 0.0
                if i < b[j] + p:
                    tr[j] += _true_range(h, l, c, i, j)
                    continue
                tr[j] = tr[j] - (tr[j] / p) + _true_range(h, l, c, i, j)
                dx, has_dx = 0.0, False
                if not (-ZERO < tr[j] < ZERO):
                    mdi, pdi = 100.0 * (minus[j] / tr[j]), 100.0 * (plus[j] / tr[j])
                    total = mdi + pdi
                    if not (-ZERO < total < ZERO):
                        dx, has_dx = 100.0 * (abs(mdi - pdi) / total), True
                if i < b[j] + 2 * p:
                    sum_dx[j] += dx
                    if i == b[j] + 2 * p - 1:
                        adx[j] = sum_dx[j] / p
                elif has_dx:
                    adx[j] = ((adx[j] * (p - 1)) + dx) / p
        for j in range(m):
            if b[j] >= 0:
                out[r, j] = adx[j]
    return out


@njit(cache=True)
def macd_last(c: np.ndarray, start: np.ndarray, fast: int, slow: int, signal: int, bars: int) -> np.ndarray:
    """(3, symbols): newest MACD line, signal and histogram. Both EMAs start at row ``slow - 1``
    (the fast one seeded on the ``fast`` values up to it), the signal is their difference's EMA."""
    n, m = c.shape
    out = np.full((3, m), np.nan)
    kf, ks, kg = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (signal + 1)
    for j in range(m):
        b = _from(start, j, n, bars)
        first = b + slow - 1  # the first MACD value
        if b < 0 or n - 1 < first + signal - 1:
            continue
        f = _ema_tail(c[:, j], first - fast + 1, first + 1, fast, kf)
        s = _ema_tail(c[:, j], b, first + 1, slow, ks)
        acc, line, sig = f - s, f - s, 0.0
        for i in range(first + 1, n):
            f = ((c[i, j] - f) * kf) + f
            s = ((c[i, j] - s) * ks) + s
            line = f - s
            if i < first + signal:
                acc += line
                if i == first + signal - 1:
                    sig = acc / signal
            else:
                sig = ((line - sig) * kg) + sig
        if signal == 1:
            sig = line
        out[0, j], out[1, j], out[2, j] = line, sig, line - sig
    return out


@njit(cache=True)
def obv_last(c: np.ndarray, v: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(symbols,) newest OBV: the first volume, plus (minus) each volume on an up (down) close."""
    n, m = c.shape
    out = np.full(m, np.nan)
    for j in range(m):
        b = start[j]
        if b < 0 or b >= n:
            continue
        total = v[b, j]
        for i in range(b + 1, n):  # branch-free (a random walk's up/down defeats prediction): +v, -v or +0
            total += ((c[i, j] > c[i - 1, j]) - (c[i, j] < c[i - 1, j])) * v[i, j]
        out[j] = total
    return out


def recursive_columns(data: dict[str, np.ndarray], cfg: IndicatorConfig, start: np.ndarray,
                      bars: dict[str, int] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Newest value of every recursive TA-Lib column (and ``obv``) of ``cfg``, named as
    :func:`app.features.indicators.ta_indicators` names them; valid where ``start >= 0``.

    ``bars`` (:func:`app.features.warmup.recursive_bars`) limits each to the last rows it needs; the
    default reads every row. ``obv`` always reads every row.
    """
    h, l, c, v = (data[k] for k in ("high", "low", "close", "volume"))
    n = c.shape[0]

    def need(names: list[str]) -> np.ndarray:
        return np.array([n if bars is None else bars.get(k, n) for k in names], np.int64).reshape(-1)

    def ints(periods) -> np.ndarray:
        return np.array(periods, np.int64).reshape(-1)

    out: dict[str, np.ndarray] = {}
    for name, periods, values in (("ema", cfg.ema, ema_last), ("rsi", cfg.rsi, rsi_last)):
        got = values(c, start, ints(periods), need([f"{name}_{p}" for p in periods]))
        out.update({f"{name}_{p}": got[r] for r, p in enumerate(periods)})
    macd = macd_last(c, start, int(cfg.macd_fast), int(cfg.macd_slow), int(cfg.macd_signal), int(need(["macd"])[0]))
    out.update(macd=macd[0], macd_signal=macd[1], macd_hist=macd[2])
    atr = atr_last(h, l, c, start, ints(cfg.atr), need([f"atr_{p}" for p in cfg.atr]))
    for r, p in enumerate(cfg.atr):
        out[f"atr_{p}"], out[f"natr_{p}"] = atr[0, r], atr[1, r]
    adx = adx_last(h, l, c, start, ints(cfg.adx), need([f"adx_{p}" for p in cfg.adx]))
    out.update({f"adx_{p}": adx[r] for r, p in enumerate(cfg.adx)})
    out["obv"] = obv_last(c, v, start)
    return out
