"""Paging logic on scripted pages: seams, stop rules, range filtering."""
from __future__ import annotations

import asyncio
import datetime as dt

from app.kis.paging import minus_minute, walk_dates, walk_minutes


def _days(n: int, last: dt.date) -> list[str]:
    return [(last - dt.timedelta(days=i)).strftime("%Y%m%d") for i in range(n)]


def test_walk_dates_asks_oldest_minus_one_and_stops_at_start():
    calendar = _days(250, dt.date(2024, 6, 14))  # newest first, one row a day
    asked = []

    async def fetch(a: dt.date, b: dt.date) -> list[dict]:
        asked.append(b)
        rows = [d for d in calendar if a.strftime("%Y%m%d") <= d <= b.strftime("%Y%m%d")]
        return [{"stck_bsop_date": d} for d in rows[:100]]

    start = dt.date(2024, 6, 14) - dt.timedelta(days=220)
    rows = asyncio.run(walk_dates(fetch, start, dt.date(2024, 6, 14), 100))
    dates = [r["stck_bsop_date"] for r in rows]
    assert len(dates) == len(set(dates)) == 221  # no gap, no duplicate
    assert asked[1] == dt.date(2024, 6, 14) - dt.timedelta(days=100)  # oldest of page 1 minus a day
    assert len(asked) == 3  # the third page is short: stop


def test_walk_dates_ignores_rows_outside_the_range_and_repeats():
    async def fetch(a: dt.date, b: dt.date) -> list[dict]:
        return [{"stck_bsop_date": "20300101"}, {"stck_bsop_date": b.strftime("%Y%m%d")}]

    rows = asyncio.run(walk_dates(fetch, dt.date(2024, 1, 1), dt.date(2024, 1, 5), 2))
    assert [r["stck_bsop_date"] for r in rows] == ["20240105", "20240104", "20240103", "20240102", "20240101"]


def test_walk_minutes_stops_at_the_open_and_at_the_minute_before_start():
    hours = [f"{h:02d}{m:02d}00" for h in range(15, 8, -1) for m in range(59, -1, -1) if "090000" <= f"{h:02d}{m:02d}00" <= "153000"]
    asked = []

    async def fetch(hour: str) -> list[dict]:
        asked.append(hour)
        return [{"stck_bsop_date": "20240614", "stck_cntg_hour": h} for h in hours if h <= hour][:30]

    whole = asyncio.run(walk_minutes(fetch, "090000", "153000", 30))
    assert len(whole) == len(hours) == 391 and asked[1] == minus_minute(whole[29]["stck_cntg_hour"])
    asked.clear()
    part = asyncio.run(walk_minutes(fetch, "150000", "153000", 30))
    assert min(r["stck_cntg_hour"] for r in part) < "150000" and len(asked) == 2


def test_minus_minute():
    assert minus_minute("100000") == "095900" and minus_minute("090100") == "090000"
