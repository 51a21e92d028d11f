"""A user's CSV or Parquet bars (long format) loaded into the Bars contract, with validation.

Accepted columns (case-insensitive): ``symbol`` (or ``code``), ``ts`` or ``date`` (or
``datetime``), ``open, high, low, close, volume`` and optionally ``value`` (traded KRW; estimated
as volume × close when missing) and ``adjusted``. Rows that break the contract are not dropped
silently: they are counted per reason and returned so the run can save and report them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from app.contracts import BARS_SCHEMA, KST_NAME, normalize_symbol
from app.errors import DataError

log = logging.getLogger(__name__)

_ALIASES = {"code": "symbol", "ticker": "symbol", "date": "ts", "datetime": "ts", "time": "ts", "timestamp": "ts"}
_REQUIRED = ("symbol", "ts", "open", "high", "low", "close", "volume")


@dataclass
class FileLoad:
    bars: pa.Table  # valid rows, Bars contract, sorted by (symbol, ts)
    rejected: pd.DataFrame  # invalid rows with a ``reason`` column
    counts: dict[str, int] = field(default_factory=dict)  # reason -> rows


def read_frame(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"data.path {path} does not exist", "give the absolute path of a CSV or Parquet file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix in (".csv", ".txt"):
        frame = pd.read_csv(path, dtype={"symbol": str, "code": str})
    else:
        raise DataError(f"data.path {path.name} is neither CSV nor Parquet", "use a .csv or .parquet file")
    frame = frame.rename(columns={c: _ALIASES.get(c.lower(), c.lower()) for c in frame.columns})
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path.name} lacks column(s) {', '.join(missing)}",
            "provide symbol, date (or ts), open, high, low, close, volume in long format",
        )
    return frame


def _timestamps(col: pd.Series) -> pd.Series:
    """Dates become 15:30 KST (the contract's date-bar time); naive times are taken as KST."""
    ts = pd.to_datetime(col, errors="coerce", format="mixed")
    if ts.dt.tz is None:
        is_date = ts.notna() & (ts == ts.dt.normalize())
        ts = ts.where(~is_date, ts + pd.Timedelta(hours=15, minutes=30))
        return ts.dt.tz_localize(KST_NAME)
    return ts.dt.tz_convert(KST_NAME)


def _symbols(col: pd.Series) -> pd.Series:
    def norm(v: object) -> str | None:
        try:
            return normalize_symbol(v)
        except ValueError:
            return None

    return col.map(norm)


def validate_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into valid and rejected (with the first failed rule as ``reason``)."""
    df = frame.copy()
    df["symbol"] = _symbols(df["symbol"])
    df["ts"] = _timestamps(df["ts"])
    for c in ("open", "high", "low", "close", "volume"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["value"] = pd.to_numeric(df["value"], errors="coerce") if "value" in df else df["volume"] * df["close"]
    df["adjusted"] = df["adjusted"].astype(bool) if "adjusted" in df else False
    prices = df[["open", "high", "low", "close"]]
    rules = [
        ("bad symbol", df["symbol"].isna()),
        ("bad timestamp", df["ts"].isna()),
        ("missing value", prices.isna().any(axis=1) | df["volume"].isna() | df["value"].isna()),
        ("non-positive price", (prices <= 0).any(axis=1)),
        ("negative volume", (df["volume"] < 0) | (df["value"] < 0)),
        ("high below open/close", df["high"] < np.maximum(df["open"], df["close"])),
        ("low above open/close", df["low"] > np.minimum(df["open"], df["close"])),
        ("duplicate (symbol, ts)", df.duplicated(["symbol", "ts"], keep=False) & df["symbol"].notna()),
    ]
    reason = pd.Series(None, index=df.index, dtype=object)
    for name, bad in rules:
        reason = reason.where(reason.notna() | ~bad.fillna(False), name)
    rejected = frame.loc[reason.notna()].assign(reason=reason[reason.notna()])
    return df.loc[reason.isna()], rejected


def load_file(path: str | Path) -> FileLoad:
    frame = read_frame(Path(path))
    good, rejected = validate_frame(frame)
    good = good.sort_values(["symbol", "ts"], kind="stable")
    good = good.assign(volume=good["volume"].round().astype("int64"), value=good["value"].round().astype("int64"))
    table = pa.Table.from_pandas(good[list(BARS_SCHEMA.names)], schema=BARS_SCHEMA, preserve_index=False)
    counts = rejected["reason"].value_counts().to_dict() if len(rejected) else {}
    if counts:
        log.warning("%d of %d rows rejected: %s", len(rejected), len(frame), counts)
    if table.num_rows == 0:
        raise DataError(f"{Path(path).name} has no valid rows ({counts})", "fix the rows listed in rejected_rows.csv")
    return FileLoad(bars=table, rejected=rejected, counts={str(k): int(v) for k, v in counts.items()})
