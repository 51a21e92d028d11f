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
    repaired: int = 0  # valid rows whose high/low were clamped within the float tolerance
    holes: list[str] = field(default_factory=list)  # symbols with a rejected row inside their series
    rows: int = 0  # rows in the file


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


#: OHLC comparisons allow this much of the price: split-adjusted prices put high and close 1e-16
#: apart in float rounding, which is no error in the data
PRICE_RTOL = 1e-9
BAD_ROWS = ("reject", "fail")


def _repair_ohlc(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Clamp high/low to the bar's range where they miss it by no more than the tolerance;
    returns the frame, the repaired rows, and a tolerance per row for the rules beyond it."""
    top, bottom = np.maximum(df["open"], df["close"]), np.minimum(df["open"], df["close"])
    tol = PRICE_RTOL * df[["open", "high", "low", "close"]].abs().max(axis=1)
    high_off, low_off = df["high"] < top, df["low"] > bottom
    fix_high, fix_low = high_off & (df["high"] >= top - tol), low_off & (df["low"] <= bottom + tol)
    df = df.assign(high=df["high"].where(~fix_high, top), low=df["low"].where(~fix_low, bottom))
    return df, (fix_high | fix_low).fillna(False), tol


def validate_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Split rows into valid and rejected (with the first failed rule as ``reason``); also the
    number of valid rows whose high/low were repaired within :data:`PRICE_RTOL`."""
    df = frame.copy()
    df["symbol"] = _symbols(df["symbol"])
    df["ts"] = _timestamps(df["ts"])
    for c in ("open", "high", "low", "close", "volume"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["value"] = pd.to_numeric(df["value"], errors="coerce") if "value" in df else df["volume"] * df["close"]
    df["adjusted"] = df["adjusted"].astype(bool) if "adjusted" in df else False
    df, repaired, tol = _repair_ohlc(df)
    prices = df[["open", "high", "low", "close"]]
    rules = [
        ("bad symbol", df["symbol"].isna()),
        ("bad timestamp", df["ts"].isna()),
        ("missing value", prices.isna().any(axis=1) | df["volume"].isna() | df["value"].isna()),
        ("non-positive price", (prices <= 0).any(axis=1)),
        ("negative volume", (df["volume"] < 0) | (df["value"] < 0)),
        ("high below open/close", df["high"] < np.maximum(df["open"], df["close"]) - tol),
        ("low above open/close", df["low"] > np.minimum(df["open"], df["close"]) + tol),
        ("duplicate (symbol, ts)", df.duplicated(["symbol", "ts"], keep=False) & df["symbol"].notna()),
    ]
    reason = pd.Series(None, index=df.index, dtype=object)
    for name, bad in rules:
        reason = reason.where(reason.notna() | ~bad.fillna(False), name)
    rejected = frame.loc[reason.notna()].assign(reason=reason[reason.notna()])
    return df.loc[reason.isna()], rejected, int((repaired & reason.isna()).sum())


def symbols_with_holes(good: pd.DataFrame, bad: pd.DataFrame) -> list[str]:
    """Symbols with a rejected row between two kept ones: every window over it now differs."""
    bad = bad.dropna(subset=["symbol", "ts"])
    if bad.empty or good.empty:
        return []
    span = good.groupby("symbol")["ts"].agg(["min", "max"])
    inner = bad.join(span, on="symbol", how="inner")
    inner = inner[(inner["ts"] > inner["min"]) & (inner["ts"] < inner["max"])]
    return sorted(inner["symbol"].unique())


def load_file(path: str | Path) -> FileLoad:
    """Load, repair within tolerance, and split off the rows that break the contract."""
    frame = read_frame(Path(path))
    good, rejected, repaired = validate_frame(frame)
    if repaired:
        log.info("%d row(s) with high/low off the bar's range by float rounding repaired", repaired)
    good = good.sort_values(["symbol", "ts"], kind="stable")
    good = good.assign(volume=good["volume"].round().astype("int64"), value=good["value"].round().astype("int64"))
    table = pa.Table.from_pandas(good[list(BARS_SCHEMA.names)], schema=BARS_SCHEMA, preserve_index=False)
    counts = {str(k): int(v) for k, v in rejected["reason"].value_counts().items()} if len(rejected) else {}
    holes = symbols_with_holes(good, _parsed(rejected)) if counts else []
    return FileLoad(bars=table, rejected=rejected, counts=counts, repaired=repaired, holes=holes, rows=len(frame))


def _parsed(rejected: pd.DataFrame) -> pd.DataFrame:
    """The symbol and ts of rejected rows, parsed like the valid ones (NaN where they cannot be)."""
    return pd.DataFrame({"symbol": _symbols(rejected["symbol"]), "ts": _timestamps(rejected["ts"])})


def check_rows(name: str, out: FileLoad, on_bad_rows: str) -> None:
    """Warn about rejected rows (naming the series they leave holes in), or refuse them in one
    line with ``on_bad_rows="fail"``; a file without one valid row is refused either way."""
    where = f"; series with holes (every window over a hole changes): {', '.join(out.holes)}" if out.holes else ""
    if out.counts and on_bad_rows == "fail":
        first = out.rejected.iloc[0]
        raise DataError(
            f"{name}: {len(out.rejected)} of {out.rows} rows break the bars contract {out.counts}, the first "
            f"{first['symbol']} {first['ts']} ({first['reason']}){where}",
            "fix those rows (listed with their reason in rejected_rows.csv), or set data.on_bad_rows=reject to skip them")
    if out.counts:
        log.warning("%d of %d rows rejected: %s%s", len(out.rejected), out.rows, out.counts, where)
    if out.bars.num_rows == 0:
        raise DataError(f"{name} has no valid rows ({out.counts})", "fix the rows listed in rejected_rows.csv")
