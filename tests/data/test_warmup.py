"""Warm-up: features from a symbol's trailing ``warmup + seq_len`` bars equal the full-history features.

Checked on the simulator's bars and on bars loaded through the file source, for every feature
column but ``obv`` (a running total since the symbol's first bar by definition, not a model input).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from app.features.feature_compute import compute_features, feature_names, warmup_bars
from app.features.feature_config import FeaturesConfig, IndicatorConfig, LabelConfig
from app.collect.file_source import load_file
from app.features.warmup import DEFAULT_RTOL, recursive_warmup
from app.sim.config import MarketConfig
from app.sim.market import Market

SEQ_LEN = 20
CUMULATIVE = {"obv"}


@functools.lru_cache(maxsize=1)  # shared by the feature tests: building the market costs seconds
def sim_bars() -> list[pa.Table]:
    market = Market(MarketConfig(seed=11, n_symbols=3, start="2016-01-04", today="2024-12-30",
                                 signal_strength=0.3, nonlinear_strength=1.0))  # fmt: skip
    return [market.daily_bars(s) for s in market.symbols]


def file_bars(tmp_path: Path, make_bars) -> list[pa.Table]:
    path = tmp_path / "bars.csv"
    frame = make_bars(["000010", "000020"], 1300, seed=4)
    frame.assign(date=frame["ts"].dt.strftime("%Y-%m-%d")).drop(columns=["ts", "adjusted"]).to_csv(path, index=False)
    bars = load_file(path).bars
    return [bars.filter(pc.equal(bars["symbol"], s)) for s in ("000010", "000020")]


def worst_errors(bars: pa.Table, cfg: FeaturesConfig, n_bars: int) -> dict[str, float]:
    """Per column: max over the last SEQ_LEN rows of |trailing - full| / the feature's scale."""
    full = compute_features(bars, cfg, LabelConfig())
    tail = compute_features(bars.slice(bars.num_rows - n_bars), cfg, LabelConfig())
    out = {}
    for name in feature_names(cfg):
        whole = full[name].to_numpy(zero_copy_only=False).astype(np.float64)
        a, b = tail[name].to_numpy(zero_copy_only=False)[-SEQ_LEN:].astype(np.float64), whole[-SEQ_LEN:]
        scale = np.maximum(np.abs(b), np.nanmedian(np.abs(whole)))
        out[name] = float(np.max(np.abs(a - b) / np.where(scale > 0, scale, 1.0)))
    return out


@pytest.mark.parametrize("source", ["sim", "file"])
def test_trailing_bars_features_equal_full_history_features(source, tmp_path, make_bars):
    cfg = FeaturesConfig()
    n_bars = warmup_bars(cfg, DEFAULT_RTOL) + SEQ_LEN
    symbols = sim_bars() if source == "sim" else file_bars(tmp_path, make_bars)
    for bars in symbols:
        assert bars.num_rows > 2 * n_bars
        errors = worst_errors(bars, cfg, n_bars)
        bad = {k: v for k, v in errors.items() if k not in CUMULATIVE and not v <= DEFAULT_RTOL}
        assert bad == {}, bad


def test_a_short_buffer_does_not_converge_so_the_check_can_fail():
    cfg = FeaturesConfig()
    short = warmup_bars(cfg) + SEQ_LEN  # defined, but the EMAs still remember their seed
    errors = worst_errors(sim_bars()[0], cfg, short)
    assert errors["close_ema_60"] > DEFAULT_RTOL and errors["rsi_14"] > DEFAULT_RTOL


def test_recursive_warmup_grows_with_the_period_and_the_tolerance():
    base = warmup_bars(FeaturesConfig(), DEFAULT_RTOL)
    assert base > warmup_bars(FeaturesConfig()) and base == recursive_warmup(IndicatorConfig())
    assert recursive_warmup(IndicatorConfig(ema=[120])) > recursive_warmup(IndicatorConfig(ema=[60]))
    assert recursive_warmup(IndicatorConfig(), 1e-9) > recursive_warmup(IndicatorConfig(), 1e-6)
    short = FeaturesConfig(indicators=IndicatorConfig(ema=[2], rsi=[2], atr=[2], adx=[2], macd_fast=2, macd_slow=3,
                                                      macd_signal=2))  # fmt: skip
    defined = warmup_bars(short)
    assert warmup_bars(short, DEFAULT_RTOL) == defined > recursive_warmup(short.indicators)  # a window outlasts them
    for cfg in (FeaturesConfig(), short):  # a manifest's count stands in for the probe (what bundles do)
        assert warmup_bars(cfg, DEFAULT_RTOL, defined=warmup_bars(cfg)) == warmup_bars(cfg, DEFAULT_RTOL)
    assert warmup_bars(short, DEFAULT_RTOL, defined=defined + 500) == defined + 500
