"""Collect one symbol into the store: fetch what is missing, merge, never store a bar twice.

Shared by the single-process path and the Ray Data actors, so both behave identically.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc

from app.contracts import KST
from app.collect.hot_cache import is_final
from app.collect.plan import FetchRange, missing_ranges
from app.collect.store import BarStore, conform
from app.errors import AppError
from app.krx.calendar import latest_session_on_or_before

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectSpec:
    """What every symbol of one run is collected with (picklable: sent to Ray actors)."""

    freq: str
    start: dt.date
    end: dt.date | None
    adjusted: bool
    source: str  # recorded in the manifest: sim | kis | file
    store_root: str


@dataclass
class SymbolOutcome:
    symbol: str
    status: str  # new | unchanged | failed
    rows_added: int = 0
    rows_total: int = 0
    fetched: int = 0  # bars received from the API (incl. the overlap bar)
    error: str = ""
    transient: bool = False  # failed for a reason that may pass (a re-run may succeed)
    seconds: float = 0.0

    def as_row(self) -> dict:
        return asdict(self)


def _changed_overlap(stored: pa.Table, fetched: pa.Table, ts: dt.datetime) -> bool:
    """True when the stored bar at ``ts`` was re-adjusted (a corporate action since last run)."""
    old = stored.filter(pc.equal(stored["ts"], pa.scalar(ts, stored.schema.field("ts").type)))
    new = fetched.filter(pc.equal(fetched["ts"], pa.scalar(ts, fetched.schema.field("ts").type)))
    if old.num_rows == 0 or new.num_rows == 0:
        return False
    # A provisional bar's high/low/close still move during its session or period, its open does
    # not; an adjustment rescales every bar before the event, open included.
    return abs(old["open"][0].as_py() - new["open"][0].as_py()) > 1e-9 * max(1.0, old["open"][0].as_py())


def _past_minutes(client, spec: CollectSpec) -> bool:
    """Minute bars of past sessions come from FHKST03010230, which only the real host serves;
    elsewhere (the paper host) 1m collection is the server's current session."""
    return spec.freq == "1m" and client.settings.env == "real"


async def _fetch(client, symbol: str, spec: CollectSpec, ranges: list[FetchRange]) -> pa.Table:
    tables = []
    for r in ranges:
        if _past_minutes(client, spec):
            tables.append(await client.past_minute_bars(symbol, r.start, r.end))
        elif spec.freq == "1m":
            since = r.overlap.strftime("%H%M%S") if r.overlap is not None and r.overlap.date() == r.start else "090000"
            tables.append(await client.minute_bars(symbol, start=since))
        else:
            tables.append(await client.daily_bars(symbol, r.start, r.end, period=spec.freq, adjusted=spec.adjusted))
    return conform(pa.concat_tables(tables)) if tables else None


async def collect_symbol(
    client, store: BarStore, symbol: str, spec: CollectSpec, latest: dict | None = None
) -> SymbolOutcome:
    """Fetch the missing ranges of ``symbol`` and merge them; errors become a failed outcome.

    ``latest`` is the hot cache's newest bar of the symbol, if any: see :func:`without_final_overlap`."""
    started = time.perf_counter()
    try:
        out = await _collect(client, store, symbol, spec, latest)
    except AppError as exc:
        out = SymbolOutcome(symbol, "failed", error=exc.one_line(), transient=exc.transient)
    out.seconds = time.perf_counter() - started
    return out


def _end_of(spec: CollectSpec) -> dt.date:
    return spec.end or dt.datetime.now(KST).date()


def without_final_overlap(ranges: list[FetchRange], stored: pa.Table | None, latest: dict | None,
                          spec: CollectSpec) -> list[FetchRange]:
    """``ranges`` less the re-fetch of the last stored bar, when the hot cache shows that bar final
    (fetched after its session's trading ended), equal to the stored one, and no newer session in range."""
    if not ranges or ranges[-1].overlap is None or stored is None or not is_final(latest, spec.freq):
        return ranges
    last, overlap = stored.slice(stored.num_rows - 1).to_pylist()[0], ranges[-1].overlap
    same = dt.datetime.fromisoformat(latest["ts"]) == overlap == last["ts"] and all(
        latest.get(k) == last[k] for k in ("close", "volume", "value", "adjusted"))
    if not same or latest_session_on_or_before(ranges[-1].end) != overlap.date():
        return ranges
    return ranges[:-1]


async def _collect(client, store: BarStore, symbol: str, spec: CollectSpec, latest: dict | None) -> SymbolOutcome:
    stored_range = store.ts_range(spec.freq, symbol)
    past = _past_minutes(client, spec)
    start = spec.start if spec.freq != "1m" or past else _end_of(spec)
    ranges = missing_ranges(stored_range, start, _end_of(spec))
    if spec.freq == "1m" and not past:
        ranges = ranges[-1:]  # one session at a time: the server's current one
    stored = store.read(spec.freq, symbol) if stored_range else None
    ranges = without_final_overlap(ranges, stored, latest, spec)
    fetched = await _fetch(client, symbol, spec, ranges)
    overlap = next((r.overlap for r in ranges if r.overlap is not None), None)
    if stored is not None and overlap is not None and spec.freq != "1m" and _changed_overlap(stored, fetched, overlap):
        log.info("%s: stored bars were re-adjusted since the last run; fetching the whole range again", symbol)
        full = [FetchRange(min(spec.start, stored_range[0].date()), _end_of(spec))]
        fresh = await _fetch(client, symbol, spec, full)
        entry = store.write(spec.freq, symbol, fresh, spec.source)
        return SymbolOutcome(symbol, "new", entry.rows - stored.num_rows, entry.rows, fresh.num_rows)
    if fetched is None or fetched.num_rows == 0:
        if stored is None:
            raise _no_data(symbol, spec)
        return SymbolOutcome(symbol, "unchanged", 0, stored.num_rows, 0)
    if stored is not None and _adds_nothing(stored, fetched):
        return SymbolOutcome(symbol, "unchanged", 0, stored.num_rows, fetched.num_rows)
    before = stored.num_rows if stored is not None else 0
    entry = store.merge(spec.freq, symbol, fetched, spec.source) if stored is not None else store.write(
        spec.freq, symbol, fetched, spec.source)
    return SymbolOutcome(symbol, "new", entry.rows - before, entry.rows, fetched.num_rows)


def _adds_nothing(stored: pa.Table, fetched: pa.Table) -> bool:
    """Every fetched bar is already stored with the same values: leave the partition untouched."""
    joined = fetched.join(stored, keys=["symbol", "ts"], right_suffix="_old", join_type="left outer")
    for col in ("open", "high", "low", "close", "volume", "value"):
        same = pc.equal(joined[col], joined[f"{col}_old"])
        if not pc.all(pc.fill_null(same, False)).as_py():
            return False
    return True


def _no_data(symbol: str, spec: CollectSpec) -> AppError:
    from app.errors import DataError

    return DataError(
        f"{symbol}: no {spec.freq} bars between {spec.start} and {_end_of(spec)}",
        "check the stock code and that the range holds trading days",
    )
