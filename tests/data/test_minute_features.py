"""Minute bars: features restart every session (no window, indicator or label spans the night), the
stage computes them a chunk of whole sessions at a time, and the newest-bar path agrees."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import app.features.features as features
from app.features.feature_compute import compute_features, feature_names
from app.features.feature_config import FeaturesConfig, LabelConfig
from app.features.features import read_features
from app.features.latest import NewestFeatures, trailing_panels
from app.collect.store import BarStore
from app.features.warmup import DEFAULT_RTOL
from app.sim.config import MarketConfig
from app.sim.market import Market
from tests.data.test_latest import scaled_errors

CFG = FeaturesConfig(calendar=["tod"])
LABEL = LabelConfig(horizon=5)


@pytest.fixture(scope="module")
def minute_bars() -> pa.Table:
    """Two symbols x six sessions of the simulator's minute bars (381 a session)."""
    market = Market(MarketConfig(seed=5, n_symbols=2, start="2024-01-02", today="2024-03-29"))
    days = market.sessions()[-6:]
    return pa.concat_tables([market.minute_bars(s, d) for s in market.symbols for d in days])


def sessions_of(table: pa.Table) -> np.ndarray:
    ts = pc.cast(table["ts"], pa.int64()).to_numpy()
    return (ts + 9 * 3600) // 86400


def test_every_session_gets_the_features_it_would_have_alone(minute_bars, same_table):
    together = compute_features(minute_bars, CFG, LABEL)
    sym, day = minute_bars["symbol"].to_numpy(zero_copy_only=False), sessions_of(minute_bars)
    for s, d in [(sym[0], day[0]), (sym[-1], day[-1]), (sym[-1], day[len(day) // 2])]:
        mask = pa.array((sym == s) & (day == d))
        alone = compute_features(minute_bars.filter(mask), CFG, LABEL)  # one session: nothing to restart
        assert alone.num_rows == 381 and same_table(together.filter(mask), alone)
    labels = together["label"].to_numpy(zero_copy_only=False)
    assert np.isnan(labels).sum() == 12 * LABEL.horizon  # the last bars of each session: no label across the night
    assert together["warmup"].to_numpy(zero_copy_only=False).sum() == 12 * 60


def test_continuous_features_when_asked_and_for_daily_bars(minute_bars, bars_frame, same_table):
    joined = compute_features(minute_bars, FeaturesConfig(calendar=["tod"], session_bound=False), LABEL)
    assert joined["warmup"].to_numpy(zero_copy_only=False).sum() == 2 * 60  # one warm-up per symbol
    from tests.data.test_features import to_table

    daily = to_table(bars_frame)
    assert same_table(compute_features(daily, FeaturesConfig(), LABEL),
                      compute_features(daily, FeaturesConfig(session_bound=False), LABEL))  # fmt: skip


def test_the_stage_writes_chunks_of_whole_sessions_equal_to_one_pass(minute_bars, tmp_path, monkeypatch, same_table):
    store = BarStore(tmp_path / "store")
    symbols = sorted(set(minute_bars["symbol"].to_pylist()))
    for s in symbols:
        store.write("1m", s, minute_bars.filter(pc.equal(minute_bars["symbol"], s)), source="test")
    monkeypatch.setattr(features, "CHUNK_ROWS", 1000)  # about 2.6 sessions a chunk
    bars = features._read_bars(str(tmp_path / "store"), "1m", symbols)
    assert len(features.chunks(bars, CFG)) >= 4 and all(n % 381 == 0 for _, n in features.chunks(bars, CFG))
    (tmp_path / "out").mkdir()
    written = features._task_features(0, None, store_root=str(tmp_path / "store"), freq="1m", tasks=[symbols],
                                      features=CFG, label=LABEL, out_dir=str(tmp_path / "out"))  # fmt: skip
    table = read_features(str(tmp_path / "out" / "part-00000.parquet"))
    expected = compute_features(bars, CFG, LABEL)
    assert written.rows == bars.num_rows and same_table(table.select(expected.column_names), expected)
    assert pq_row_groups(tmp_path / "out" / "part-00000.parquet") >= 4  # written chunk by chunk


def pq_row_groups(path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).num_row_groups


def test_newest_bar_of_a_session_from_that_session_only(minute_bars):
    """Mid-session, the newest-bar path reads only the current session and equals the batch (obv too:
    it restarts with the session)."""
    newest = NewestFeatures(CFG)
    day = sessions_of(minute_bars)
    first, second = np.unique(day)[:2]
    pos = np.arange(minute_bars.num_rows) % 381  # bar of its session
    cut = minute_bars.filter(pa.array((day == first) | ((day == second) & (pos <= 200))))
    symbols, panels, ts = trailing_panels(cut, newest.buffer_bars, session_bound=True)
    assert len(symbols) == 2 and (np.isfinite(panels["close"]).sum(axis=0) == 201).all()
    errors = scaled_errors(newest(panels, ts), compute_features(cut, CFG, LABEL), newest.names)
    bad = {k: v for k, v in errors.items() if not v <= DEFAULT_RTOL}
    assert bad == {} and set(errors) == set(feature_names(CFG))
