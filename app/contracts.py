"""Data contracts shared by every stage: the Bars and Ticks schemas (README.md "Data", docs/features.md).

Kept free of project imports (only ``app.errors``) so the simulator, the KIS client, the data
layer and the config schema can all use the same schema and parsers without importing each other.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from app.errors import ConfigError

KST = ZoneInfo("Asia/Seoul")
KST_NAME = "Asia/Seoul"

#: Bars: one row per (symbol, ts); date bars are stamped 15:30 KST of their day.
BARS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("s", tz=KST_NAME), nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.int64(), nullable=False),
        pa.field("value", pa.int64(), nullable=False),
        pa.field("adjusted", pa.bool_(), nullable=False),
    ]
)
BAR_COLUMNS = tuple(BARS_SCHEMA.names)

#: Ticks: one row per trade from the realtime feed (H0STCNT0), in arrival order; ``ts`` is the
#: exchange time of the trade, ``cum_*`` the session's running totals, ``session`` KIS's session code.
TICKS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("s", tz=KST_NAME), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("quantity", pa.int64(), nullable=False),
        pa.field("cum_volume", pa.int64(), nullable=False),
        pa.field("cum_value", pa.int64(), nullable=False),
        pa.field("bid", pa.float64(), nullable=False),
        pa.field("ask", pa.float64(), nullable=False),
        pa.field("session", pa.string(), nullable=False),
    ]
)

#: Frequencies a Bars table can have; the store partitions by these names.
FREQS = ("D", "W", "M", "Y", "1m")

#: Close of the KRX regular session: the timestamp of a date bar.
DAILY_BAR_TIME = dt.time(15, 30)


def daily_ts(day: dt.date) -> dt.datetime:
    """The contract timestamp of a date bar (15:30 KST of that day)."""
    return dt.datetime.combine(day, DAILY_BAR_TIME, tzinfo=KST)


def minute_ts(day: dt.date, hhmmss: str) -> dt.datetime:
    """The contract timestamp of a minute bar labelled ``HHMMSS`` on ``day``."""
    t = dt.time(int(hhmmss[0:2]), int(hhmmss[2:4]), int(hhmmss[4:6]))
    return dt.datetime.combine(day, t, tzinfo=KST)


def normalize_symbol(code: object) -> str:
    """A KRX stock code as a 6-digit string; Hydra turns ``005930`` into the int 5930."""
    text = str(code).strip()
    if text.isdigit() and len(text) <= 6:
        return text.zfill(6)
    if len(text) == 6 and text.isalnum():
        return text.upper()
    raise ValueError(f"{code!r} is not a 6-character KRX stock code")


def normalize_symbols(codes: Iterable[object]) -> list[str]:
    """Codes as 6-digit strings, de-duplicated in their order."""
    seen: dict[str, None] = {}
    for code in codes:
        seen.setdefault(normalize_symbol(code), None)
    return list(seen)


def parse_date(value: object, key: str) -> dt.date:
    """An ISO date from the config key ``key``; a bad value is a one-line ConfigError naming it."""
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not a date", f"write {key}=YYYY-MM-DD") from None


def timestamps_as_int64(ts: np.ndarray) -> np.ndarray:
    """Timestamps (datetime64, or tz-aware Timestamp objects) as int64 UTC nanoseconds.

    Only equality matters downstream: rows with the same instant form one cross-section.
    """
    import pandas as pd

    ts = np.asarray(ts)
    if ts.dtype.kind in "iu":
        return ts.astype(np.int64)
    return np.asarray(pd.DatetimeIndex(ts).as_unit("ns").asi8, dtype=np.int64)


def empty_bars() -> pa.Table:
    return BARS_SCHEMA.empty_table()
