"""Walking KIS charts back in time (docs/kis.md §4(b), §4(c)); the chart APIs have no cursor.

Date charts: ask for [start, date2], take the newest ``max_rows`` rows, set the next ``date2``
to the oldest date − 1 day; stop on a short page or once ``start`` is reached. Minute charts:
ask for rows at or before ``hour``; next ``hour`` = oldest − 1 minute; stop on a short page, at
the session open, or once the minute before ``start`` is in hand (its cumulative value is what
the first wanted minute's value is measured from). Past minute charts: ask for rows at or before
(date, hour) with earlier sessions included; next cursor = the oldest row − 1 minute; stop on an
empty or short page or once a row older than ``start`` arrives. Rows outside the asked range and
rows already seen are dropped, so page seams never duplicate.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

SESSION_OPEN = "090000"


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


async def walk_dates(
    fetch: Callable[[dt.date, dt.date], Awaitable[list[dict]]],
    start: dt.date, end: dt.date, max_rows: int,
) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    first, date2 = _ymd(start), end
    while date2 >= start:
        rows = await fetch(start, date2)
        last = _ymd(date2)
        kept = [r for r in rows if first <= r["stck_bsop_date"] <= last and r["stck_bsop_date"] not in seen]
        seen.update(r["stck_bsop_date"] for r in kept)
        out.extend(kept)
        if len(rows) < max_rows or not kept:
            break
        oldest = min(r["stck_bsop_date"] for r in kept)
        if oldest <= first:
            break
        date2 = dt.datetime.strptime(oldest, "%Y%m%d").date() - dt.timedelta(days=1)
    return out


def minus_minute(hhmmss: str) -> str:
    t = dt.datetime.strptime(hhmmss, "%H%M%S") - dt.timedelta(minutes=1)
    return t.strftime("%H%M%S")


async def walk_minutes(
    fetch: Callable[[str], Awaitable[list[dict]]],
    start: str, end: str, max_rows: int, session_open: str = SESSION_OPEN,
) -> list[dict]:
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    hour = end
    while True:
        rows = await fetch(hour)
        kept = []
        for r in rows:
            key = (r["stck_bsop_date"], str(r.get("stck_cntg_hour", "")).zfill(6))
            if key[1] <= hour and key not in seen:
                seen.add(key)
                kept.append(r)
        out.extend(kept)
        if len(rows) < max_rows or not kept:
            break
        oldest = min(str(r["stck_cntg_hour"]).zfill(6) for r in kept)
        if oldest < start or oldest <= session_open or oldest < "000100":  # no wrap past midnight
            break
        hour = minus_minute(oldest)
    return out


async def walk_past_minutes(
    fetch: Callable[[dt.date, str], Awaitable[list[dict]]],
    start: dt.date, end: dt.date, max_rows: int, last_hour: str = "235959",
) -> list[dict]:
    """Minute rows of the sessions in [start, end], newest first as the pages come."""
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    first, last = _ymd(start), _ymd(end)
    day, hour = end, last_hour
    while True:
        rows = await fetch(day, hour)
        cursor = (_ymd(day), hour)
        keys = [(r["stck_bsop_date"], str(r.get("stck_cntg_hour", "")).zfill(6)) for r in rows]
        kept = [(k, r) for k, r in zip(keys, rows) if k <= cursor and k not in seen and first <= k[0] <= last]
        seen.update(k for k, _ in kept)
        out.extend(r for _, r in kept)
        if len(rows) < max_rows or not kept or min(k[0] for k in keys) < first:
            break
        oldest = min(k for k, _ in kept)
        day = dt.datetime.strptime(oldest[0], "%Y%m%d").date()
        if oldest[1] <= "000000":
            day, hour = day - dt.timedelta(days=1), last_hour
        else:
            hour = minus_minute(oldest[1])
    return out
