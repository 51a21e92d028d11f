"""What a collection run still has to fetch for one symbol, given what the store holds.

The last stored bar is always fetched again: a date bar collected during the session, or a
week/month/year bar of an unfinished period, is provisional, and an adjusted series whose
overlapping bar changed has been re-adjusted by a corporate action (then the whole range is
fetched again). Everything else already stored is left alone.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class FetchRange:
    start: dt.date
    end: dt.date
    overlap: dt.datetime | None = None  # ts of a stored bar this range fetches again


def missing_ranges(
    stored: tuple[dt.datetime, dt.datetime] | None, start: dt.date, end: dt.date
) -> list[FetchRange]:
    """Ranges of [start, end] not yet in the store, oldest first."""
    if stored is None:
        return [FetchRange(start, end)]
    first, last = stored[0].date(), stored[1].date()
    ranges = []
    if start < first:
        ranges.append(FetchRange(start, first - dt.timedelta(days=1)))
    if end >= last:
        ranges.append(FetchRange(last, end, overlap=stored[1]))
    return ranges
