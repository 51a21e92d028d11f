"""KRX sessions and their hours from exchange_calendars' XKRX (late opens, CSAT days, 15:00 closes before 2016-08).

Minute bars follow docs/kis.md §7: one bar per minute of continuous trading, labelled by the
minute's start (``090000`` holds the opening auction print), then a single closing-auction bar
stamped at the close (``153000``). The ten auction minutes before the close carry no bar.
"""
from __future__ import annotations

import datetime as dt
import functools
import warnings

import numpy as np

from app.contracts import KST
from app.errors import ConfigError

CLOSING_AUCTION_MIN = 10


@functools.lru_cache(maxsize=1)
def _calendar():
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


def next_session_after(day: dt.date) -> dt.date:
    """The first KRX session after ``day``; past the calendar's end, the next weekday stands in."""
    cal = _calendar()
    nxt = day + dt.timedelta(days=1)
    if nxt > cal.last_session.date():
        return np.busday_offset(np.datetime64(nxt, "D"), 0, roll="forward").astype(dt.date)
    return cal.date_to_session(nxt.isoformat(), direction="next").date()


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


def session_state(now: dt.datetime | None = None) -> dict:
    """The KRX session state at ``now`` (default: this instant): open, pre-open, closed or holiday.

    ``holiday`` covers weekends too; beyond the calendar's last known session the state is
    ``unknown`` (exchange_calendars publishes about a year ahead).
    """
    import pandas as pd

    cal = _calendar()
    now = (now or dt.datetime.now(KST)).astimezone(KST)
    day = now.date()
    out: dict = {"now": now.isoformat(timespec="seconds"), "state": "unknown", "next_open": None}
    if not cal.first_session.date() <= day <= cal.last_session.date():
        out["note"] = f"the XKRX calendar covers {cal.first_session.date()} to {cal.last_session.date()}"
        return out
    instant = pd.Timestamp(now)
    with warnings.catch_warnings():  # exchange_calendars trips pandas deprecations here too
        warnings.simplefilter("ignore")
        return _state_at(cal, day, instant, out)


def _state_at(cal, day: dt.date, instant, out: dict) -> dict:
    if cal.is_session(day.isoformat()):
        opens, closes = cal.session_open(day.isoformat()), cal.session_close(day.isoformat())
        out["state"] = "pre-open" if instant < opens else "open" if instant < closes else "closed"
        out["close"] = closes.tz_convert(KST).isoformat()
    else:
        out["state"] = "holiday"
    try:
        out["next_open"] = cal.next_open(instant).tz_convert(KST).isoformat()
    except ValueError:  # past the calendar's last session
        pass
    return out
