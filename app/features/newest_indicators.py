"""The newest value of every TA-Lib column for many symbols, with as few TA-Lib calls as give it.

A windowed indicator (SMA, Bollinger bands, stochastic, MFI, CCI, Williams %R, ROC) at a bar reads
a fixed number of trailing bars only, so its newest value for every symbol comes from **one** call
on the symbols' tails laid end to end: the value at the end of a tail reads that tail alone when
the tail holds the indicator's whole look-back (``tail_bars`` does: it is the features' warm-up).
TA-Lib's running sums do carry their rounding over from the tails before; the tails go in by
ascending price, so what is carried is never larger than the tail's own magnitude. A tail holding
a NaN (a symbol with a short history) would poison every later one, so those symbols get their own
calls. The recursive indicators (EMA, RSI, MACD, ATR/NATR, ADX) and ``obv``, whose value depends
on every bar of the buffer, come from :mod:`app.features.recursive_last`: TA-Lib's recursions, compiled,
for all symbols at once; a column it does not cover (a NaN inside its history) gets TA-Lib's calls.
"""
from __future__ import annotations

import numpy as np

from app.features.feature_config import IndicatorConfig
from app.features.indicators import GROUPS, RECURSIVE, ta_indicators
from app.features.recursive_last import recursive_columns, starts

FIELDS = ("open", "high", "low", "close", "volume")
WHOLE = RECURSIVE | {"obv"}  # computed over the whole buffer: recursive, or a running total
WINDOWED = frozenset(GROUPS) - WHOLE


def _per_symbol(data: dict[str, np.ndarray], cfg: IndicatorConfig, groups: frozenset[str], cols: np.ndarray,
                rows: int, out: dict[str, np.ndarray]) -> None:  # fmt: skip
    """Newest values of ``groups`` for the symbols ``cols``, one TA-Lib call per indicator and symbol."""
    for j in cols:
        arrays = (data[k][-rows:, j] for k in FIELDS)
        for name, values in ta_indicators(*arrays, cfg, groups).items():
            out.setdefault(name, np.empty(data["close"].shape[1]))[j] = values[-1]


def windowed_tiers(cfg: IndicatorConfig, tail_bars: int) -> list[tuple[int, frozenset[str]]]:
    """The windowed indicators in two tiers of trailing rows, each holding every look-back of its
    indicators (TA-Lib's own, read from its leading NaN): TA-Lib's cost grows with the rows it
    reads (CCI's with rows x period), and all but the longest SMA need a third of the tail."""
    ramp = np.linspace(100.0, 200.0, tail_bars)
    rows = {g: 1 + max(int(np.isnan(v).sum()) for v in ta_indicators(ramp, ramp + 1, ramp - 1, ramp, ramp, cfg,
                                                                        frozenset({g})).values())
            for g in WINDOWED}  # fmt: skip
    short = frozenset(g for g, r in rows.items() if r <= tail_bars // 2)
    tiers = [(max((rows[g] for g in short), default=0), short), (tail_bars, frozenset(rows) - short)]
    return [(r, groups) for r, groups in tiers if groups]


def _end_to_end(data: dict[str, np.ndarray], cfg: IndicatorConfig, cols: np.ndarray,
                tiers: list[tuple[int, frozenset[str]]], out: dict[str, np.ndarray]) -> None:  # fmt: skip
    """Newest windowed values of the symbols ``cols`` (tails without NaN) from one call per indicator,
    each tier on its own trailing rows."""
    tail = max(rows for rows, _ in tiers)
    cols = cols[np.argsort(np.nanmax(data["high"][-tail:, cols], axis=0), kind="stable")]
    for rows, groups in tiers:
        arrays = (np.ascontiguousarray(data[k][-rows:, cols].T).reshape(-1) for k in FIELDS)
        ends = np.arange(1, len(cols) + 1) * rows - 1
        for name, values in ta_indicators(*arrays, cfg, groups).items():
            out.setdefault(name, np.empty(data["close"].shape[1]))[cols] = values[ends]


def newest_indicators(data: dict[str, np.ndarray], cfg: IndicatorConfig, tail_bars: int,
                      bars: dict[str, int] | None = None,
                      tiers: list[tuple[int, frozenset[str]]] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Newest value of every TA-Lib column of the (bars, symbols) panels ``data``: the recursive ones
    from the last ``bars[column]`` rows (:func:`app.features.warmup.recursive_bars`; default: all),
    ``obv`` from all, the windowed ones from the last ``tail_bars``, which must hold each one's
    look-back (``warmup_bars(cfg) + 1`` does: it is the longest run of leading NaN of any feature),
    in the :func:`windowed_tiers` of ``tail_bars`` (computed here when not given)."""
    n_bars, n_sym = data["close"].shape
    start = starts(*(data[k] for k in ("high", "low", "close", "volume")))
    out = recursive_columns(data, cfg, start, bars)
    _per_symbol(data, cfg, WHOLE, np.flatnonzero(start < 0), n_bars, out)
    rows = min(tail_bars, n_bars)
    clean = ~np.isnan(np.stack([data[k][-rows:] for k in FIELDS])).any(axis=(0, 1))
    if rows < tail_bars:  # a buffer shorter than a look-back: end to end, a window would reach the tail before
        clean[:] = False
    if clean.any():
        _end_to_end(data, cfg, np.flatnonzero(clean), tiers or windowed_tiers(cfg, rows), out)
    _per_symbol(data, cfg, WINDOWED, np.flatnonzero(~clean), rows, out)
    return out
