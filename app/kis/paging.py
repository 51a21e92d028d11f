"""Walking KIS charts back in time (kis-api.md §4(b), §4(c)); the chart APIs have no cursor.

Date charts: ask for [start, date2], take the newest ``max_rows`` rows, set the next ``date2``
to the oldest date − 1 day; stop on a short page or once ``start`` is reached. Minute charts:
ask for rows at or before ``hour``; next ``hour`` = oldest − 1 minute; stop on a short page, at
the session open, or once the minute before ``start`` is in hand (its cumulative value is what
the first wanted minute's value is measured from). Rows outside the asked range and rows already
seen are dropped, so page seams never duplicate.
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
