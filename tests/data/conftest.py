"""Fixtures of the data tests: synthetic random-walk bars and a Bars store written from a frame."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from app.contracts import BARS_SCHEMA, KST_NAME
from app.collect.store import BarStore


def random_walk_bars(
    symbols: list[str], days: int, seed: int = 0, start: str = "2020-01-02", skip_first: dict[str, int] | None = None
) -> pd.DataFrame:
    """Daily bars (15:30 KST, business days) per symbol; ``skip_first`` starts a symbol later."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=days, tz=KST_NAME) + pd.Timedelta(hours=15, minutes=30)
    frames = []
    for i, sym in enumerate(symbols):
        n = days - (skip_first or {}).get(sym, 0)
        close = 1_000.0 * (i + 1) * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
        open_ = close * np.exp(rng.normal(0.0, 0.01, n))
        high = np.maximum(open_, close) * (1 + rng.uniform(0.0, 0.02, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0.0, 0.02, n))
        volume = rng.integers(1_000, 500_000, n)
        frames.append(
            pd.DataFrame(
                {"symbol": sym, "ts": dates[days - n :], "open": open_, "high": high, "low": low, "close": close,
                 "volume": volume, "value": (volume * close).astype(np.int64), "adjusted": True}
            )  # fmt: skip
        )
    return pd.concat(frames, ignore_index=True)


def write_bars_store(root: Path, frame: pd.DataFrame, freq: str = "D") -> BarStore:
    """Write ``frame`` (Bars columns, any order) as the store layout, one partition per symbol."""
    store = BarStore(root)
    table = pa.Table.from_pandas(frame, preserve_index=False).select(BARS_SCHEMA.names).cast(BARS_SCHEMA)
    for sym in sorted(frame["symbol"].unique()):
        mask = pa.compute.equal(table["symbol"], sym)
        store.write(freq, sym, table.filter(mask), source="test")
    return store


@pytest.fixture
def bars_frame() -> pd.DataFrame:
    """Four symbols of 300 bars; 000040 starts 40 bars late so the symbols differ in length."""
    return random_walk_bars(["000010", "000020", "000030", "000040"], 300, seed=3, skip_first={"000040": 40})


@pytest.fixture
def bars_store(tmp_path: Path, bars_frame: pd.DataFrame) -> Path:
    root = tmp_path / "store"
    write_bars_store(root, bars_frame)
    return root


@pytest.fixture(scope="session")
def make_bars():
    """:func:`random_walk_bars`, for tests that need their own bars."""
    return random_walk_bars


@pytest.fixture(scope="session")
def make_store():
    """:func:`write_bars_store`, for tests that need their own store."""
    return write_bars_store


def tables_equal(a: pa.Table, b: pa.Table) -> bool:
    """Same columns, types and values, NaN equal to NaN (Arrow's ``equals`` says NaN != NaN)."""
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for name in a.column_names:
        x, y = a[name], b[name]
        if pa.types.is_floating(x.type):
            if x.null_count != y.null_count or not pa.compute.all(pa.compute.equal(x.is_null(), y.is_null())).as_py():
                return False
            if not np.array_equal(x.to_numpy(zero_copy_only=False), y.to_numpy(zero_copy_only=False), equal_nan=True):
                return False
        elif not x.equals(y):
            return False
    return True


@pytest.fixture(scope="session")
def same_table():
    """:func:`tables_equal` (NaN-aware table equality)."""
    return tables_equal
