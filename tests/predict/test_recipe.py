"""The scoring recipe: windows from a symbol's trailing bars equal the windows of its full history."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.features.feature_compute import compute_features, feature_names, warmup_bars
from app.features.feature_config import FeaturesConfig, LabelConfig
from app.features.scalers import FeatureScaler
from app.features.warmup import DEFAULT_RTOL
from app.features.window_rows import table_windows
from app.features.windows import select_features
from app.predict.recipe import Recipe, windows_parallel
from app.sim.config import MarketConfig
from app.sim.market import Market

SEQ_LEN = 20


def recipe() -> Recipe:
    cfg = FeaturesConfig()
    columns = select_features(feature_names(cfg), list(cfg.model_columns))
    return Recipe(cfg, LabelConfig(), FeatureScaler.fit([], columns, "none", None), columns, SEQ_LEN)


def market_bars() -> pa.Table:
    market = Market(MarketConfig(seed=5, n_symbols=4, start="2018-01-02", today="2024-12-30"))
    return pa.concat_tables([market.daily_bars(s) for s in market.symbols])


def last_rows(bars: pa.Table, n: int) -> pa.Table:
    sym = bars["symbol"].to_numpy(zero_copy_only=False)
    parts = [bars.filter(pc.equal(bars["symbol"], s)) for s in dict.fromkeys(sym)]
    return pa.concat_tables([p.slice(max(0, p.num_rows - n)) for p in parts])


def test_trailing_windows_equal_full_history_windows_to_the_warmup_tolerance():
    r, bars = recipe(), market_bars()
    ts = pc.cast(bars["ts"], pa.int64()).to_numpy()
    start = int(np.unique(ts)[-3])  # the three newest bars of every symbol
    full = compute_features(bars, r.features, r.label)
    keep = pc.cast(full["ts"], pa.int64()).to_numpy() >= start
    expected = table_windows(full, r.columns, r.scaler, SEQ_LEN, keep)
    trailing = last_rows(bars, warmup_bars(r.features, DEFAULT_RTOL) + SEQ_LEN - 1 + 3)
    got = r.windows(trailing, start, int(ts.max()))
    assert list(got["symbol"]) == list(expected["symbol"]) and len(got["symbol"]) == 12
    assert np.array_equal(got["ts"], expected["ts"]) and got["no_window"] == {}
    scale = np.maximum(np.abs(expected["x"]), np.nanmedian(np.abs(expected["x"]), axis=(0, 1)))
    assert np.max(np.abs(got["x"] - expected["x"]) / np.where(scale > 0, scale, 1)) <= DEFAULT_RTOL


def test_worker_processes_give_the_same_windows_and_list_short_symbols():
    r, bars = recipe(), market_bars()
    short = last_rows(bars, 30).filter(pc.equal(bars["symbol"][0], last_rows(bars, 30)["symbol"]))
    rest = last_rows(bars, 700)
    table = pa.concat_tables([short, rest.filter(pc.invert(pc.equal(rest["symbol"], short["symbol"][0])))])
    end = int(pc.max(pc.cast(table["ts"], pa.int64())).as_py())
    one = windows_parallel(r, table, end, end, workers=1)
    two = windows_parallel(r, table, end, end, workers=2, min_rows=0)
    assert one["no_window"] == two["no_window"] == {short["symbol"][0].as_py(): 30}
    assert list(one["symbol"]) == list(two["symbol"]) and len(one["symbol"]) == 3
    np.testing.assert_array_equal(one["x"], two["x"])
