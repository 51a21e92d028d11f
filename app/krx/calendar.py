"""KRX sessions and their hours from exchange_calendars' XKRX (late opens, CSAT days, 15:00 closes before 2016-08).

Minute bars follow kis-api.md §7: one bar per minute of continuous trading, labelled by the
minute's start (``090000`` holds the opening auction print), then a single closing-auction bar
stamped at the close (``153000``). The ten auction minutes before the close carry no bar.
"""
from __future__ import annotations

import datetime as dt
import functools

import numpy as np

from app.contracts import KST
from app.errors import ConfigError

CLOSING_AUCTION_MIN = 10


@functools.lru_cache(maxsize=1)
def _calendar():
    import warnings

    import exchange_calendars as xc

    with warnings.catch_warnings():  # exchange_calendars trips a pandas deprecation on import
        warnings.simplefilter("ignore")
        return xc.get_calendar("XKRX")


def latest_session_on_or_before(day: dt.date) -> dt.date:
    cal = _calendar()
    if day < cal.first_session.date():
        raise ConfigError(f"{day} is before the XKRX calendar starts", f"use a date after {cal.first_session.date()}")
    last = cal.last_session.date()
    day = min(day, last)
    return cal.date_to_session(day.isoformat(), direction="previous").date()


def is_session(day: dt.date) -> bool:
    """Whether KRX trades on ``day`` (False outside the calendar's range)."""
    cal = _calendar()
    if not cal.first_session.date() <= day <= cal.last_session.date():
        return False
    return bool(cal.is_session(day.isoformat()))


def sessions(start: dt.date, end: dt.date) -> tuple[list[dt.date], np.ndarray, np.ndarray]:
    """Sessions in [start, end] with open and close as minutes after midnight KST."""
    cal = _calendar()
    idx = cal.sessions_in_range(start.isoformat(), end.isoformat())
    if len(idx) == 0:
        raise ConfigError(f"no KRX session between {start} and {end}", "widen market.start..market.today")
    opens = cal.opens[idx].dt.tz_convert(KST)
    closes = cal.closes[idx].dt.tz_convert(KST)
    open_min = (opens.dt.hour * 60 + opens.dt.minute).to_numpy(dtype=np.int32)
    close_min = (closes.dt.hour * 60 + closes.dt.minute).to_numpy(dtype=np.int32)
    return [d.date() for d in idx], open_min, close_min


def minute_labels(open_min: int, close_min: int) -> list[str]:
    """HHMMSS labels of one session's bars: continuous minutes, then the closing auction."""
    stops = list(range(open_min, close_min - CLOSING_AUCTION_MIN)) + [close_min]
    return [f"{m // 60:02d}{m % 60:02d}00" for m in stops]


def today_kst() -> dt.date:
    return dt.datetime.now(KST).date()
