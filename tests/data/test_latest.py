"""The newest-bar path: features of each symbol's newest bar from its trailing buffer equal the batch
features of that bar, on simulator bars and on bars loaded through the file source."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from app.features.feature_compute import compute_features
from app.features.feature_config import FeaturesConfig, LabelConfig
from app.features.latest import NewestFeatures, trailing_panels
from app.features.warmup import DEFAULT_RTOL
from app.errors import DataError
from tests.data.test_warmup import CUMULATIVE, file_bars, sim_bars

CFG = FeaturesConfig(calendar=["dow", "dom", "month", "tod"])


def newest_rows(table: pa.Table) -> np.ndarray:
    symbols = table["symbol"].to_numpy(zero_copy_only=False)
    return np.flatnonzero(np.r_[symbols[1:] != symbols[:-1], True])


def scaled_errors(got: np.ndarray, batch: pa.Table, names: list[str]) -> dict[str, float]:
    """Per column: max |newest - batch| over the symbols, over max(|batch|, median |batch column|)."""
    rows, out = newest_rows(batch), {}
    for f, name in enumerate(names):
        col = batch[name].to_numpy(zero_copy_only=False).astype(np.float64)
        ref = col[rows]
        if not np.array_equal(np.isnan(got[:, f]), np.isnan(ref)):
            out[name] = float("inf")
            continue
        scale = np.maximum(np.abs(ref), np.nanmedian(np.abs(col)))
        out[name] = float(np.nanmax(np.abs(got[:, f] - ref) / np.where(scale > 0, scale, 1.0), initial=0.0))
    return out


@pytest.mark.parametrize("source", ["sim", "file"])
def test_newest_bar_features_equal_the_batch_features(source, tmp_path, make_bars):
    newest = NewestFeatures(CFG)
    bars = pa.concat_tables(sim_bars() if source == "sim" else file_bars(tmp_path, make_bars))
    seconds = pc.cast(bars["ts"], pa.int64())
    for end in (None, int(np.median(seconds.to_numpy()))):  # the newest bar, and one halfway back
        cut = bars if end is None else bars.filter(pc.less_equal(seconds, end))
        symbols, panels, ts = trailing_panels(cut, newest.buffer_bars)
        assert panels["close"].shape == (newest.buffer_bars, len(symbols)) and len(symbols) >= 2
        got = newest(panels, ts)
        errors = scaled_errors(got, compute_features(cut, CFG, LabelConfig()), newest.names)
        bad = {k: v for k, v in errors.items() if k not in CUMULATIVE and not v <= DEFAULT_RTOL}
        assert bad == {}, bad


def test_a_symbol_with_a_short_history_gets_the_features_of_that_history(make_bars):
    """NaN padding above a short buffer stands for 'no bars yet', as the batch sees it."""
    frame = make_bars(["000010", "000020"], 700, seed=2, skip_first={"000020": 600})  # 100 bars only
    from tests.data.test_features import to_table

    bars = to_table(frame)
    newest = NewestFeatures(CFG)
    _, panels, ts = trailing_panels(bars, newest.buffer_bars)
    assert np.isnan(panels["close"][: newest.buffer_bars - 100, 1]).all()
    got = newest(panels, ts)
    errors = scaled_errors(got, compute_features(bars, CFG, LabelConfig()), newest.names)
    assert max(v for k, v in errors.items() if k != "obv") <= DEFAULT_RTOL
    assert errors["obv"] > DEFAULT_RTOL  # the one running total: equal to the batch only up to a constant


def test_timestamps_must_match_the_symbols(make_bars):
    from tests.data.test_features import to_table

    newest = NewestFeatures(CFG)
    _, panels, ts = trailing_panels(to_table(make_bars(["000010"], 80)), newest.buffer_bars)
    with pytest.raises(DataError, match="one newest ts per panel column"):
        newest(panels, np.r_[ts, ts])


def test_every_alpha158_operator_of_the_newest_bar_equals_the_batch():
    """All of qlib's rolling operators (not only the default subset) through the one-call statistics."""
    from app.features.alpha import ROLLING
    from app.features.feature_config import Alpha158Config

    cfg = FeaturesConfig(alpha158=Alpha158Config(rolling=list(ROLLING), windows=[3, 7, 30]))
    newest = NewestFeatures(cfg)
    bars = pa.concat_tables(sim_bars())
    _, panels, ts = trailing_panels(bars, newest.buffer_bars)
    errors = scaled_errors(newest(panels, ts), compute_features(bars, cfg, LabelConfig()), newest.names)
    assert len([k for k in errors if k.startswith("a158_")]) > 29 * 3
    bad = {k: v for k, v in errors.items() if k not in CUMULATIVE and not v <= DEFAULT_RTOL}
    assert bad == {}, bad
