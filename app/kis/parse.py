"""KIS JSON → typed values and Bars tables (app/contracts.py).

Every KIS value is a string; columns are converted by Arrow casts rather than per value in
Python. Empty objects in row arrays (KIS pads with ``{}``) are dropped.

The ``value`` of a minute bar: KIS's minute rows carry ``acml_tr_pbmn``, the session's
*cumulative* traded value, so a minute's value is the difference between its cumulative value and
that of the previous minute bar of the same session; the session's first bar takes its whole
cumulative value (counting from zero at the open). ``cntg_vol`` is already per minute. Minute
bars are today's prices on today's basis, where adjusted and raw coincide: they are marked
``adjusted=True`` so that they line up with the (default) adjusted date bars.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.contracts import BARS_SCHEMA, KST_NAME, empty_bars
from app.errors import DataError

_DAY_CLOSE_S = (15 * 60 + 30) * 60  # date bars are stamped 15:30 KST
LOAN_RATIO_KEYS = ("itewhol_loan_rmnd_ratem", "itewhol_loan_rmnd_ratem name")


def rows_of(payload: dict, key: str, required: str = "stck_bsop_date") -> list[dict]:
    """The non-empty row objects of ``payload[key]``."""
    rows = payload.get(key) or []
    if isinstance(rows, dict):
        rows = [rows]
    return [r for r in rows if isinstance(r, dict) and r.get(required)]


def chart_summary(output1: dict | None) -> dict[str, str]:
    """``output1`` of the chart endpoint with the loan-ratio key under its documented name
    (the live server spells it ``"itewhol_loan_rmnd_ratem name"``)."""
    out = dict(output1 or {})
    for key in LOAN_RATIO_KEYS[1:]:
        if key in out:
            out.setdefault(LOAN_RATIO_KEYS[0], out.pop(key))
    return out


def _column(rows: list[dict], key: str, typ: pa.DataType) -> pa.Array:
    text = pa.array([r.get(key, "") for r in rows], pa.string())
    try:
        return pc.cast(text, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = next((r.get(key) for r in rows if not _parses(r.get(key), typ)), None)
        raise DataError(
            f"KIS returned {key}={bad!r}, not a number",
            "report the response; the field should be a numeric string",
        ) from None


def _parses(value: object, typ: pa.DataType) -> bool:
    try:
        (int if pa.types.is_integer(typ) else float)(value)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


def _kst(stamps: pa.Array, fmt: str, add_s: int = 0) -> pa.Array:
    naive = pc.strptime(stamps, format=fmt, unit="s")
    if add_s:
        naive = pc.cast(pc.add(pc.cast(naive, pa.int64()), add_s), pa.timestamp("s"))
    return pc.assume_timezone(naive, KST_NAME)


def _table(symbol: str, ts: pa.Array, o, h, l, c, volume, value, adjusted: bool) -> pa.Table:
    n = len(ts)
    return pa.Table.from_arrays(
        [pa.array([symbol] * n, pa.string()), ts, o, h, l, c, volume, value,
         pa.array(np.full(n, adjusted))],
        schema=BARS_SCHEMA,
    )


def date_bars(symbol: str, rows: list[dict], adjusted: bool) -> pa.Table:
    """Date bars from chart rows (FHKST03010100 output2, FHKST01010400 output), in row order.

    FHKST01010400 has no traded value (``acml_tr_pbmn``); its bars carry ``value = 0``.
    """
    dates = pa.array([r["stck_bsop_date"] for r in rows], pa.string())
    f64, i64 = pa.float64(), pa.int64()
    if rows and "acml_tr_pbmn" in rows[0]:
        value = _column(rows, "acml_tr_pbmn", i64)
    else:
        value = pa.array(np.zeros(len(rows), np.int64))
    return _table(
        symbol, _kst(dates, "%Y%m%d", _DAY_CLOSE_S),
        _column(rows, "stck_oprc", f64), _column(rows, "stck_hgpr", f64),
        _column(rows, "stck_lwpr", f64), _column(rows, "stck_clpr", f64),
        _column(rows, "acml_vol", i64), value, adjusted,
    )


@dataclass
class MinuteRows:
    """Minute rows of FHKST03010200 before the per-minute value is known."""

    symbol: str
    ts: pa.Array
    dates: list[str]
    hours: list[str]
    ohlc: tuple[pa.Array, pa.Array, pa.Array, pa.Array]
    volume: pa.Array
    cum_value: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.hours)


def minute_rows(symbol: str, rows: list[dict]) -> MinuteRows:
    dates = [r["stck_bsop_date"] for r in rows]
    hours = [str(r.get("stck_cntg_hour", "")).zfill(6) for r in rows]
    stamps = pa.array([d + h for d, h in zip(dates, hours)], pa.string())
    f64, i64 = pa.float64(), pa.int64()
    return MinuteRows(
        symbol, _kst(stamps, "%Y%m%d%H%M%S"), dates, hours,
        (_column(rows, "stck_oprc", f64), _column(rows, "stck_hgpr", f64),
         _column(rows, "stck_lwpr", f64), _column(rows, "stck_prpr", f64)),
        _column(rows, "cntg_vol", i64),
        _column(rows, "acml_tr_pbmn", i64).to_numpy(zero_copy_only=False),
    )


def minute_bars(pages: list[MinuteRows]) -> pa.Table:
    """Bars from minute pages: ascending, unique, with per-minute ``value`` (module doc)."""
    if not pages or not any(len(p) for p in pages):
        return empty_bars()
    ts = pa.concat_arrays([p.ts for p in pages])
    cum = np.concatenate([p.cum_value for p in pages])
    order = _ascending_unique(ts)
    days = np.array([d for p in pages for d in p.dates])[order]
    cum = cum[order]
    same_day = np.zeros(len(order), bool)
    same_day[1:] = days[1:] == days[:-1]
    step = cum.copy()
    step[1:] -= cum[:-1]
    value = np.where(same_day, step, cum)
    cols = [pa.concat_arrays([p.ohlc[i] for p in pages]).take(order) for i in range(4)]
    volume = pa.concat_arrays([p.volume for p in pages]).take(order)
    return _table(pages[0].symbol, ts.take(order), *cols, volume, pa.array(value), True)


def _ascending_unique(ts: pa.Array) -> np.ndarray:
    """Indices that sort ``ts`` ascending keeping the first of equal stamps."""
    _, first = np.unique(pc.cast(ts, pa.int64()).to_numpy(), return_index=True)
    return first


def sort_unique(table: pa.Table) -> pa.Table:
    """Ascending by ts, one row per ts (the first occurrence wins)."""
    if table.num_rows == 0:
        return table
    return table.take(_ascending_unique(table.column("ts").combine_chunks()))


@dataclass(frozen=True)
class Quote:
    """inquire-price (FHKST01010100) essentials; ``raw`` keeps every field as sent."""

    symbol: str
    price: float
    change: float
    change_rate: float
    open: float
    high: float
    low: float
    volume: int
    value: int
    upper_limit: float
    lower_limit: float
    base_price: float
    raw: dict[str, str] = field(repr=False, compare=False)


_QUOTE_FIELDS = {
    "price": ("stck_prpr", float), "change": ("prdy_vrss", float), "change_rate": ("prdy_ctrt", float),
    "open": ("stck_oprc", float), "high": ("stck_hgpr", float), "low": ("stck_lwpr", float),
    "volume": ("acml_vol", int), "value": ("acml_tr_pbmn", int), "upper_limit": ("stck_mxpr", float),
    "lower_limit": ("stck_llam", float), "base_price": ("stck_sdpr", float),
}


def quote(symbol: str, output: dict) -> Quote:
    values = {}
    for name, (key, conv) in _QUOTE_FIELDS.items():
        text = output.get(key) or "0"
        try:
            values[name] = conv(text)
        except ValueError:
            raise DataError(f"KIS returned {key}={text!r}, not a number", "report the response") from None
    return Quote(symbol=symbol, raw=dict(output), **values)
