"""KRX tick sizes (호가가격단위) and daily price limits, vectorised (docs/kis.md §7).

Two tables: the unified one in force since 2023-01-25, and the older per-market tables before
it (KOSPI up to 1,000 KRW ticks, KOSDAQ capped at 100 KRW). Every band edge is a multiple of the
tick above it, so rounding to the nearest tick never leaves the grid.
"""
from __future__ import annotations

import datetime as dt

import numpy as np

NEW_TABLE_FROM = dt.date(2023, 1, 25)

# (band upper edges, tick inside each band); the last band is open-ended
_NEW = (np.array([2_000, 5_000, 20_000, 50_000, 200_000, 500_000]), np.array([1, 5, 10, 50, 100, 500, 1_000]))
_OLD_KOSPI = (np.array([1_000, 5_000, 10_000, 50_000, 100_000, 500_000]), np.array([1, 5, 10, 50, 100, 500, 1_000]))
_OLD_KOSDAQ = (np.array([1_000, 5_000, 10_000, 50_000]), np.array([1, 5, 10, 50, 100]))


def table(day: dt.date, kosdaq: bool) -> tuple[np.ndarray, np.ndarray]:
    if day >= NEW_TABLE_FROM:
        return _NEW
    return _OLD_KOSDAQ if kosdaq else _OLD_KOSPI


def tick_size(price: np.ndarray | float, tab: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Tick of each price (a price on a band edge belongs to the band above)."""
    edges, ticks = tab
    return ticks[np.searchsorted(edges, price, side="right")]


def round_tick(price: np.ndarray, tab: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    tick = tick_size(price, tab)
    return np.maximum(np.rint(price / tick) * tick, 1.0)


def floor_tick(price: np.ndarray, tab: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    tick = tick_size(price, tab)
    return np.floor(price / tick + 1e-9) * tick


def ceil_tick(price: np.ndarray, tab: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    tick = tick_size(price, tab)
    return np.ceil(price / tick - 1e-9) * tick


def limits(base: np.ndarray, tab: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower daily limit: floor_tick(base*1.3), ceil_tick(base*0.7)."""
    return floor_tick(base * 1.3, tab), ceil_tick(base * 0.7, tab)


def on_grid(price: np.ndarray, tab: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    price = np.asarray(price, dtype=float)
    return np.mod(price, tick_size(price, tab)) == 0
