"""The newest-bar path's own indicator code equals TA-Lib: the compiled recursive indicators
(``recursive_last``) against ``talib.<NAME>(...)[-1]`` column by column, and the windowed indicators
from one call over the tails end to end against one call per symbol; NaN-padded, short, flat and
gapped columns included."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import talib

from app.features.feature_config import IndicatorConfig
from app.features.indicators import ta_indicators
from app.features.newest_indicators import WHOLE, WINDOWED, newest_indicators
from app.features.recursive_last import recursive_columns, starts
from tests.data.test_warmup import sim_bars

FIELDS = ("open", "high", "low", "close", "volume")
CFG = IndicatorConfig(ema=[2, 5, 60], rsi=[2, 14], atr=[5, 14], adx=[3, 14], macd_fast=5, macd_slow=13, macd_signal=4)


def random_panels(n: int = 400, m: int = 7, seed: int = 3) -> dict[str, np.ndarray]:
    """Random walks with the awkward columns: NaN padding (1, 2), all NaN (3), flat (4), a gap (5)."""
    rng = np.random.default_rng(seed)
    c = 1_000 * (1 + np.arange(m)) * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0))
    o = c * np.exp(rng.normal(0, 0.01, (n, m)))
    out = {"open": o, "close": c, "high": np.maximum(o, c) * (1 + rng.uniform(0, 0.02, (n, m))),
           "low": np.minimum(o, c) * (1 - rng.uniform(0, 0.02, (n, m))),
           "volume": rng.integers(1_000, 10**6, (n, m)).astype(np.float64)}  # fmt: skip
    for a in out.values():
        a[: n - 100, 1] = np.nan
        a[: n - 12, 2] = np.nan
        a[:, 3] = np.nan
    for k in ("open", "high", "low", "close"):
        out[k][:, 4] = 500.0
    out["close"][n // 2, 5] = np.nan
    return {k: np.asfortranarray(v) for k, v in out.items()}


def sim_panels() -> dict[str, np.ndarray]:
    bars = pa.concat_tables([t.slice(t.num_rows - 600) for t in sim_bars()])
    return {k: np.asfortranarray(bars[k].to_numpy().astype(np.float64).reshape(-1, 600).T) for k in FIELDS}


def talib_last(panels: dict[str, np.ndarray], groups: frozenset[str], rows: int | None = None) -> dict[str, np.ndarray]:
    """TA-Lib itself, one call per indicator and column, on the last ``rows`` rows."""
    n, m = panels["close"].shape
    out: dict[str, np.ndarray] = {}
    for j in range(m):
        arrays = (np.ascontiguousarray(panels[k][n - (rows or n) :, j]) for k in FIELDS)
        for name, values in ta_indicators(*arrays, CFG, groups).items():
            out.setdefault(name, np.empty(m))[j] = values[-1]
    return out


def assert_same(got: dict[str, np.ndarray], ref: dict[str, np.ndarray], cols: np.ndarray, rtol: float = 1e-12) -> None:
    assert set(got) == set(ref)
    for name in ref:
        a, b = got[name][cols], ref[name][cols]
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        np.testing.assert_allclose(a[~np.isnan(b)], b[~np.isnan(b)], rtol=rtol, atol=0, err_msg=name)


@pytest.mark.parametrize("panels", [random_panels(), sim_panels()], ids=["random", "sim"])
def test_compiled_recursive_indicators_equal_talib(panels):
    start = starts(*(panels[k] for k in ("high", "low", "close", "volume")))
    covered = np.flatnonzero(start >= 0)
    assert_same(recursive_columns(panels, CFG, start), talib_last(panels, WHOLE), covered)
    bars = {"ema_60": 250, "rsi_14": 90, "adx_14": 120, "atr_14": 70, "macd": 80}  # each from its last rows only
    got = recursive_columns(panels, CFG, start, bars)
    for name, rows in bars.items():
        ref = talib_last(panels, WHOLE, rows)
        names = [name] + (["natr_14"] if name == "atr_14" else ["macd_signal", "macd_hist"] if name == "macd" else [])
        assert_same({k: got[k] for k in names}, {k: ref[k] for k in names}, covered)


def test_only_a_gap_inside_a_column_is_left_to_talib():
    start = starts(*(random_panels()[k] for k in ("high", "low", "close", "volume")))
    assert start.tolist() == [0, 300, 388, 400, 0, -1, 0]


@pytest.mark.parametrize("panels", [random_panels(), sim_panels()], ids=["random", "sim"])
def test_newest_indicators_equal_talib_per_symbol(panels):
    """Recursive from the whole buffer, windowed from the tail: end to end where the tails are clean,
    TA-Lib per symbol where they are not (NaN padding, the gap)."""
    tail = 70
    ref = talib_last(panels, WHOLE) | talib_last(panels, WINDOWED, tail)
    assert_same(newest_indicators(panels, CFG, tail), ref, np.arange(panels["close"].shape[1]), rtol=1e-9)


def test_a_buffer_shorter_than_the_tail_is_computed_symbol_by_symbol():
    """End to end, sma_20 of a 15-bar buffer would read the tail before it; per symbol it is NaN."""
    panels = {k: v[-15:] for k, v in random_panels().items()}
    got = newest_indicators(panels, CFG, 70)
    assert np.isnan(got["sma_20"]).all()
    assert_same(got, talib_last(panels, WHOLE) | talib_last(panels, WINDOWED), np.arange(7), rtol=1e-9)


def test_talib_itself_is_what_the_tests_hold_to():
    c = np.asfortranarray(np.cumsum(np.ones((50, 1)), axis=0) + 100.0)
    got = recursive_columns({"high": c + 1, "low": c - 1, "close": c, "volume": c}, CFG, np.zeros(1, np.int64))
    assert got["ema_5"][0] == talib.EMA(c[:, 0].copy(), 5)[-1] and got["rsi_14"][0] == 100.0
