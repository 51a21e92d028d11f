"""Label-free windows: the one window builder, in memory and over a Ray Dataset; training's windows
are exactly its windows that have a label and lie in the period."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.contracts import BARS_SCHEMA
from app.features.feature_compute import compute_features
from app.features.feature_config import FeaturesConfig, LabelConfig
from app.features.scalers import FeatureScaler
from app.features.splits import Period
from app.features.window_rows import dataset_windows, table_windows
from app.features.windows import FileFrame, WindowSpec, file_windows

SEQ_LEN, HORIZON = 10, 3
NAMES = ["logret_1", "close_sma_20", "rsi_14", "a158_std5"]


def features(make_bars) -> pa.Table:
    frame = make_bars(["000010", "000020", "000030"], 160, seed=8, skip_first={"000030": 40})
    bars = pa.Table.from_pandas(frame, preserve_index=False).select(BARS_SCHEMA.names).cast(BARS_SCHEMA)
    return compute_features(bars, FeaturesConfig(), LabelConfig(horizon=HORIZON))


def scaler() -> FeatureScaler:
    return FeatureScaler.fit([], NAMES, "none", None)


def test_label_free_windows_include_the_newest_bars_and_training_keeps_the_labelled_ones(make_bars, tmp_path):
    table = features(make_bars)
    free = table_windows(table, NAMES, scaler(), SEQ_LEN)
    last = table.to_pandas().groupby("symbol")["ts"].max()
    newest = pd.to_datetime(free["ts"], unit="s", utc=True)
    for sym, ts in last.items():  # every symbol's newest bar has no label, yet ends a window
        assert (newest[free["symbol"] == sym] == ts).any()
    path = tmp_path / "part.parquet"
    pq.write_table(table, path)
    everything = Period(0, 2**40, 2**40)
    spec = WindowSpec(NAMES, scaler(), SEQ_LEN, "label", everything, block_windows=10_000)
    trained = next(file_windows(str(path), spec))
    labelled = np.isfinite(FileFrame.read(str(path), NAMES, "label").y[free["row"]])
    assert len(trained["y"]) == labelled.sum() == len(free["row"]) - 3 * HORIZON
    np.testing.assert_array_equal(trained["x"], free["x"][labelled])
    np.testing.assert_array_equal(trained["ts"].astype(np.int64), free["ts"][labelled])
    assert np.isfinite(free["x"]).all() and free["x"].shape[1:] == (SEQ_LEN, len(NAMES))


def test_keep_limits_the_rows_that_end_a_window(make_bars):
    table = features(make_bars)
    ts = pa.compute.cast(table["ts"], pa.int64()).to_numpy()
    keep = ts >= np.sort(np.unique(ts))[-5]
    w = table_windows(table, NAMES, scaler(), SEQ_LEN, keep)
    assert len(w["ts"]) == keep.sum() and (w["ts"] >= ts[keep].min()).all()


def test_ray_dataset_windows_equal_the_in_memory_ones(ray_session, make_bars):
    import ray.data

    table = features(make_bars)
    free = table_windows(table, NAMES, scaler(), SEQ_LEN)
    got = dataset_windows(ray.data.from_arrow(table).repartition(4), NAMES, scaler(), SEQ_LEN).to_pandas()
    got = got.assign(ts=got["ts"].map(lambda t: int(t.timestamp())))
    got = got.sort_values(["symbol", "ts"]).reset_index(drop=True)
    assert list(got["symbol"]) == list(free["symbol"]) and np.array_equal(got["ts"].to_numpy(), free["ts"])
    np.testing.assert_array_equal(np.stack(got["x"].to_numpy()), free["x"])
