"""Bars → scaled, label-free windows of the rows to score, by the bundle's recipe (no I/O, picklable).

The recipe is the bundle minus the model: features and label config, scaler, model columns and
window length. It is small, so it travels to worker processes; :func:`windows_parallel` cuts the
bars into groups of whole symbols and builds their windows in ``workers`` processes (features
dominate the cost of scoring, and one process uses one core).
"""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.features.feature_compute import compute_features, warmup_bars
from app.features.feature_config import Alpha158Config, FeaturesConfig, LabelConfig
from app.features.scalers import FeatureScaler
from app.features.window_rows import table_windows

COMPUTE_SYMBOLS = 32  # symbols per panel: trailing slices are short, so wider panels amortise per-call costs
# (measured 0.55 CPU-s per 256 symbols at 32 or 64, 0.85 at the features stage's 8)
ALPHA_PREFIX = "a158_"
MIN_PARALLEL_ROWS = 50_000  # below this, starting worker processes costs more than it saves


@dataclass(frozen=True)
class Recipe:
    features: FeaturesConfig
    label: LabelConfig
    scaler: FeatureScaler
    columns: list[str]
    seq_len: int

    def features_of(self, bars: pa.Table, config: FeaturesConfig | None = None) -> pa.Table:
        """Features of ``bars`` (whole symbols, sorted by symbol then ts), a few symbols per panel."""
        bounds = symbol_bounds(bars)
        parts = []
        for i in range(0, len(bounds) - 1, COMPUTE_SYMBOLS):
            lo, hi = bounds[i], bounds[min(i + COMPUTE_SYMBOLS, len(bounds) - 1)]
            parts.append(compute_features(bars.slice(lo, hi - lo), config or self.features, self.label))
        return pa.concat_tables(parts)

    def scoring_features(self, bars: pa.Table, start: int) -> pa.Table:
        """The model columns on the rows windows ending at ``ts >= start`` can reach (and those after).

        The recursive TA-Lib indicators need the whole trailing history; the Alpha158 operators are
        fixed-length trailing windows, exact from the defined warm-up on, so they are computed on
        each symbol's tail only (they are most of the cost).
        """
        tail = tail_rows(bars, start, self.seq_len - 1 + warmup_bars(self.features))
        alpha = [c for c in self.columns if c.startswith(ALPHA_PREFIX)]
        if not alpha:
            return self.features_of(bars).take(tail)
        no_alpha = dataclasses.replace(self.features, alpha158=Alpha158Config(kbar=False, price=[], rolling=[]))
        rest = self.features_of(bars, no_alpha).take(tail)
        short = self.features_of(bars.take(tail))  # the same rows: tail indices are sorted
        cols = {"symbol": rest["symbol"], "ts": rest["ts"]}
        cols.update({c: (short if c.startswith(ALPHA_PREFIX) else rest)[c] for c in self.columns})
        return pa.table(cols)

    def windows(self, bars: pa.Table, start: int, end: int) -> dict[str, Any]:
        """Windows ending at bars with ``start <= ts <= end``, and the symbols with such bars but no window."""
        feats = self.scoring_features(bars, start)
        ts = pc.cast(feats["ts"], pa.int64()).to_numpy()
        keep = (ts >= start) & (ts <= end)
        w = table_windows(feats, self.columns, self.scaler, self.seq_len, keep)
        symbol = feats["symbol"].to_numpy(zero_copy_only=False)
        names, counts = np.unique(bars["symbol"].to_numpy(zero_copy_only=False), return_counts=True)
        short = set(symbol[keep]) - set(w["symbol"])
        return {"x": w["x"], "symbol": w["symbol"], "ts": w["ts"],
                "no_window": {str(s): int(c) for s, c in zip(names, counts) if s in short}}  # fmt: skip


def tail_rows(bars: pa.Table, start: int, lookback: int) -> np.ndarray:
    """Row indices of each symbol's rows from ``lookback`` rows before its first ``ts >= start`` on."""
    ts = pc.cast(bars["ts"], pa.int64()).to_numpy()
    bounds = symbol_bounds(bars)
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        first = lo + int(np.searchsorted(ts[lo:hi], start, side="left"))
        parts.append(np.arange(max(lo, first - lookback), hi))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def symbol_bounds(bars: pa.Table) -> np.ndarray:
    """Row offsets where each symbol starts, plus the end."""
    symbols = bars["symbol"].to_numpy(zero_copy_only=False)
    change = np.flatnonzero(symbols[1:] != symbols[:-1]) + 1 if len(symbols) else np.zeros(0, int)
    return np.concatenate([[0], change, [len(symbols)]]).astype(int) if len(symbols) else np.zeros(1, int)


def _chunks(bars: pa.Table, n: int) -> list[pa.Table]:
    """``bars`` cut into about ``n`` groups of whole symbols of similar row counts."""
    bounds = symbol_bounds(bars)
    cuts = np.unique(bounds[np.searchsorted(bounds, np.linspace(0, bars.num_rows, n + 1))])
    return [bars.slice(lo, hi - lo) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]


def _merge(parts: list[dict[str, Any]], recipe: Recipe) -> dict[str, Any]:
    if not parts:
        return {"x": np.zeros((0, recipe.seq_len, len(recipe.columns)), np.float32), "symbol": np.zeros(0, object),
                "ts": np.zeros(0, np.int64), "no_window": {}}  # fmt: skip
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("x", "symbol", "ts")}
    out["no_window"] = {s: c for p in parts for s, c in p["no_window"].items()}
    return out


def windows_parallel(recipe: Recipe, bars: pa.Table, start: int, end: int, workers: int,
                     min_rows: int = MIN_PARALLEL_ROWS) -> dict[str, Any]:  # fmt: skip
    """:meth:`Recipe.windows` over ``workers`` processes (in this one below ``min_rows`` or ``workers <= 1``)."""
    if workers <= 1 or bars.num_rows < min_rows:
        return _merge([recipe.windows(bars, start, end)] if bars.num_rows else [], recipe)
    chunks = _chunks(bars, 2 * workers)
    # spawn: a fresh interpreter per worker; forking a process that runs Ray or torch threads is unsafe
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        parts = list(pool.map(recipe.windows, chunks, [start] * len(chunks), [end] * len(chunks)))
    return _merge(parts, recipe)
