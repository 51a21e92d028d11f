"""Label-free windows: which rows end a window of finite features, and the windows themselves.

This is the one window builder. Training (:mod:`app.features.windows`) keeps, on top of it, the rows
whose target is defined and that belong to a split period; prediction and the realtime path use it
as is, so the newest bars of a symbol, which have no label yet, still get a window.

A window ending at row ``i`` exists when its ``seq_len`` rows all belong to one symbol and every
model feature in them is finite (warm-up rows are skipped, never filled). Input is an in-memory
Arrow table of features sorted by (symbol, ts), or a Ray Dataset of such rows.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.features.panel import Layout
from app.features.scalers import FeatureScaler
from app.errors import DataError


def feature_ends(pos: np.ndarray, xs: np.ndarray, seq_len: int) -> np.ndarray:
    """Mask of rows that end a window: ``seq_len`` rows of one symbol, every feature finite.

    ``pos`` is each row's bar index within its symbol; ``xs`` the (n, F) feature matrix in
    (symbol, ts) order.
    """
    n = len(pos)
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(xs).all(axis=1))])
    ends = np.arange(n)
    lo = np.maximum(ends - seq_len + 1, 0)
    return (pos >= seq_len - 1) & ((bad[ends + 1] - bad[lo]) == 0)


def gather(xs: np.ndarray, ends: np.ndarray, seq_len: int) -> np.ndarray:
    """The (len(ends), seq_len, F) windows ending at ``ends`` (a view where possible)."""
    if len(ends) == 0 or len(xs) < seq_len:
        return np.zeros((0, seq_len, xs.shape[1]), xs.dtype)
    view = np.lib.stride_tricks.sliding_window_view(xs, (seq_len, xs.shape[1]))[:, 0]
    return view[ends - seq_len + 1]


def feature_matrix(table: pa.Table, names: list[str]) -> np.ndarray:
    """The (n, F) float64 matrix of ``names`` (null = NaN)."""
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise DataError(f"the features lack column(s) {', '.join(missing[:5])}",
                        "compute them with the features config the model was trained on")  # fmt: skip
    x = np.empty((table.num_rows, len(names)), np.float64)
    for j, name in enumerate(names):
        x[:, j] = pc.cast(table[name], pa.float64()).to_numpy(zero_copy_only=False)
    return x


def table_windows(table: pa.Table, names: list[str], scaler: FeatureScaler, seq_len: int,
                  keep: np.ndarray | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Windows of a features table (whole symbols, sorted by symbol then ts); no label needed.

    ``keep`` (a row mask) limits which rows may end a window, e.g. the bars to score. Returns
    ``x`` (n, seq_len, F) float32, ``symbol``, ``ts`` (epoch seconds) and ``row`` (the ending row).
    """
    symbol = table["symbol"].to_numpy(zero_copy_only=False)
    xs = scaler.transform(feature_matrix(table, names))
    ok = feature_ends(Layout.of(symbol).pos, xs, seq_len)
    if keep is not None:
        ok &= keep
    ends = np.flatnonzero(ok)
    ts = pc.cast(table["ts"], pa.int64()).to_numpy()
    return {"x": gather(xs, ends, seq_len), "symbol": symbol[ends].astype(object), "ts": ts[ends], "row": ends}


def _group_windows(group: pa.Table, names: list[str], scaler: FeatureScaler, seq_len: int) -> pa.Table:
    from ray.data.extensions import ArrowTensorArray

    group = group.sort_by("ts")
    w = table_windows(group, names, scaler, seq_len)
    return pa.table({"x": ArrowTensorArray.from_numpy(np.ascontiguousarray(w["x"])),
                     "symbol": pa.array(w["symbol"], pa.string()),
                     "ts": pa.array(w["ts"], pa.int64()).cast(group.schema.field("ts").type)})  # fmt: skip


def dataset_windows(ds: Any, names: list[str], scaler: FeatureScaler, seq_len: int, partitions: int = 8) -> Any:
    """The same windows over a Ray Dataset of feature rows: grouped by symbol, so no window spans blocks.

    ``partitions`` sizes the shuffle that groups the rows (Ray's default of 200 costs seconds on small data).
    """
    return ds.groupby("symbol", num_partitions=partitions).map_groups(
        _group_windows, batch_format="pyarrow", fn_kwargs={"names": names, "scaler": scaler, "seq_len": seq_len}
    )
