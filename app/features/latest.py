"""Features of the newest bar of many symbols from their trailing buffers: the predict/realtime path.

Only the last row is computed, each part from as few bars as give the batch value, and for all
symbols in a few calls rather than some per symbol:

* the recursive TA-Lib indicators (EMA, RSI, MACD, ATR/NATR, ADX), each from the last bars it needs
  to agree with its full-history value to ``rtol`` (:func:`app.features.warmup.recursive_bars`; the
  buffer, ``warmup_bars(cfg, rtol) + 1`` bars, is the longest), with TA-Lib's recursions compiled
  for all symbols at once (:mod:`app.features.recursive_last`);
* the other indicators from the last ``warmup_bars(cfg) + 1`` bars, which hold their whole window,
  with one TA-Lib call over every symbol's tail (:mod:`app.features.newest_indicators`);
* every rolling feature (Alpha158, returns, volatility, volume z) from the same tail, and the
  indicators' unit-free companions (``close_sma_*``, ``bb_pos``...), as one traced program of
  compiled calls (:mod:`app.features.newest_stats`);
* calendar fields from the newest ``ts``.

The buffers are (bars, symbols) panels, oldest row first, newest bar in the last row; a symbol with
fewer bars is NaN-padded at the top and gets the features of its shorter history, as the batch
does. Where features are session bound (intraday bars), the buffer is the newest bar's session
(:func:`trailing_panels` with ``session_bound``), exactly the series the batch uses. ``obv`` is a
running total since a symbol's first bar, so from a buffer it equals the batch only up to a
constant (it is not a model input).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.features.alpha import DERIVED, rolled_features
from app.features.feature_compute import calendar_columns, feature_names, session_days, validate_features, warmup_bars
from app.features.feature_config import FeaturesConfig
from app.features.indicators import scale_free_companions
from app.features.newest_indicators import newest_indicators, windowed_tiers
from app.features.newest_stats import NewestRolling
from app.features.panel import Rolling
from app.features.warmup import DEFAULT_RTOL, recursive_bars
from app.errors import DataError
from app.typed import typed

FIELDS = ("open", "high", "low", "close", "volume", "value")


class NewestFeatures:
    """``NewestFeatures(cfg)(panels, ts)``: the (symbols, features) matrix of each column's newest bar."""

    def __init__(self, cfg: FeaturesConfig | Mapping | None = None, rtol: float = DEFAULT_RTOL) -> None:
        self.cfg = typed(FeaturesConfig, cfg)
        validate_features(self.cfg)
        self.names = feature_names(self.cfg)
        self.tail_bars = warmup_bars(self.cfg) + 1
        self.buffer_bars = max(self.tail_bars, warmup_bars(self.cfg, rtol) + 1)
        self._bars = recursive_bars(self.cfg.indicators, rtol)
        self._tiers = windowed_tiers(self.cfg.indicators, self.tail_bars)
        self._rolling = NewestRolling(self._traced, DERIVED, FIELDS)
        at = {name: i for i, name in enumerate(self.names)}
        self._rolled_rows = np.array([at[name] for name in self._rolling.names], np.int64)
        traced = set(self._rolling.names)
        self._other_rows = [(at[name], name) for name in self.names if name not in traced]

    def _traced(self, ctx: Rolling) -> dict[str, np.ndarray]:
        """What the tape computes: every rolling feature, and the indicators' unit-free companions
        from the newest indicator values (inputs of each call)."""
        companions = scale_free_companions(ctx.inputs, ctx["close"], self.cfg)  # type: ignore[attr-defined]
        return dict(rolled_features(ctx, self.cfg)) | companions

    def __call__(self, panels: Mapping[str, np.ndarray], ts: np.ndarray) -> np.ndarray:
        """Features (float64, NaN where undefined) of the last row of every column of ``panels``.

        ``panels`` maps open, high, low, close, volume, value to (bars, symbols) float64 arrays;
        ``ts`` holds each symbol's newest bar time in epoch seconds.
        """
        data = {k: np.asfortranarray(panels[k], dtype=np.float64) for k in FIELDS}
        n_bars, n_sym = data["close"].shape
        if len(ts) != n_sym:
            raise DataError(f"{len(ts)} timestamps for {n_sym} symbols", "give one newest ts per panel column")
        feats = newest_indicators(data, self.cfg.indicators, self.tail_bars, self._bars, self._tiers)
        feats.update(calendar_columns(np.asarray(ts, np.int64), list(self.cfg.calendar)))
        out = np.empty((len(self.names), n_sym))  # (features, symbols): each feature's row is contiguous
        out[self._rolled_rows] = self._rolling({k: v[-self.tail_bars :] for k, v in data.items()}, feats)
        for row, name in self._other_rows:
            out[row] = feats[name]
        out[np.isinf(out)] = np.nan
        return np.ascontiguousarray(out.T)


def trailing_panels(bars: pa.Table, n_bars: int, session_bound: bool = False,
                    ) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    """Each symbol's last ``n_bars`` bars of a table sorted by (symbol, ts) as NaN-padded panels;
    with ``session_bound``, none before its newest bar's session (the series its features run on).

    Returns the symbols, the panels of :data:`FIELDS` and each symbol's newest ts (epoch seconds).
    """
    symbols = bars["symbol"].to_numpy(zero_copy_only=False)
    ts = pc.cast(bars["ts"], pa.int64()).to_numpy()
    days = session_days(ts)
    change = np.flatnonzero(symbols[1:] != symbols[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    ends = np.concatenate([change, [len(symbols)]]).astype(np.int64)
    long = {k: bars[k].to_numpy().astype(np.float64) for k in FIELDS}
    panels = {k: np.full((n_bars, len(starts)), np.nan, order="F") for k in FIELDS}
    for j, (lo, hi) in enumerate(zip(starts, ends)):
        lo = max(int(lo), int(hi) - n_bars)
        if session_bound:
            lo = max(lo, int(lo + np.searchsorted(days[lo:hi], days[hi - 1], side="left")))
        for k in FIELDS:
            panels[k][n_bars - (hi - lo) :, j] = long[k][lo:hi]
    return [str(s) for s in symbols[starts]], panels, ts[ends - 1]
