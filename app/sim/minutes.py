"""1-minute bars of one session whose aggregate is exactly that session's daily bar.

A Brownian bridge (two points per minute) runs from the open to a pre-auction price, is stretched
so that it touches the day's high and low exactly, and is rounded to the tick grid; the closing
auction bar prints the close. Volumes follow a U-shaped intraday profile and are split as integers
that sum to the daily volume; values are split the same way and sum to the daily value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.krx import ticks

AUCTION_SHARE = 0.06  # share of the day's volume printed by the closing auction
MIN_MINUTE_VOLUME = 4  # each continuous minute trades at least this (its open, high, low and close prints)


@dataclass
class DayBar:
    open: float
    high: float
    low: float
    close: float
    volume: int
    value: int


@dataclass
class MinuteBars:
    labels: list[str]  # HHMMSS
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # int64
    value: np.ndarray  # int64


def _stretch(path: np.ndarray, top: float, bottom: float, hi: float, lo: float, rng) -> np.ndarray:
    """Map the part above top onto [top, hi] and below bottom onto [lo, bottom]; force both touches."""
    out = path.copy()
    inner = np.arange(1, len(path) - 1)
    mx, mn = path[inner].max(), path[inner].min()
    above, below = path > top, path < bottom
    if mx > top:
        out[above] = top + (path[above] - top) * (hi - top) / (mx - top)
    if mn < bottom:
        out[below] = bottom - (bottom - path[below]) * (bottom - lo) / (bottom - mn)
    out[inner[np.argmax(path[inner])] if mx > top else rng.choice(inner)] = hi
    low_at = inner[np.argmin(path[inner])] if mn < bottom else rng.choice(inner)
    if out[low_at] == hi and hi != lo:
        low_at = next(i for i in inner if out[i] != hi)
    out[low_at] = lo
    return out


def split_int(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to weights that sum exactly to total (largest remainders)."""
    raw = total * weights / weights.sum()
    out = np.floor(raw).astype(np.int64)
    rest = int(total - out.sum())
    if rest > 0:
        out[np.argsort(out - raw)[:rest]] += 1
    return out


def generate(bar: DayBar, labels: list[str], tab: tuple[np.ndarray, np.ndarray], rng, vol: float) -> MinuteBars:
    n = len(labels) - 1  # continuous bars; the last label is the closing auction
    pre = float(np.clip(ticks.round_tick(np.array(bar.close * math.exp(0.1 * vol * rng.standard_normal())), tab),
                        bar.low, bar.high))
    steps = rng.standard_normal(2 * n) * vol / math.sqrt(2 * n)
    walk = np.concatenate([[0.0], np.cumsum(steps)])
    a, b = math.log(bar.open), math.log(pre)
    bridge = a + walk - np.linspace(0, 1, 2 * n + 1) * (walk[-1] - (b - a))
    top, bottom = max(a, b), min(a, b)
    path = _stretch(bridge, top, bottom, math.log(bar.high), math.log(bar.low), rng)
    px = np.clip(ticks.round_tick(np.exp(path), tab), bar.low, bar.high)
    px[0], px[-1] = bar.open, pre
    trip = np.stack([px[0:-1:2], px[1::2], px[2::2]])
    o = np.append(trip[0], bar.close)
    c = np.append(trip[2], bar.close)
    h = np.append(trip.max(axis=0), bar.close)
    lw = np.append(trip.min(axis=0), bar.close)
    m = np.arange(n)
    w = (1 + 2.5 * np.exp(-m / 20) + np.exp(-(n - 1 - m) / 30)) * np.exp(0.5 * rng.standard_normal(n))
    w[0] *= 3
    w = np.append(w / w.sum() * (1 - AUCTION_SHARE), AUCTION_SHARE)
    floor = np.append(np.full(n, MIN_MINUTE_VOLUME), 1)
    volume = floor + split_int(bar.volume - int(floor.sum()), w)
    typical = (o + h + lw + c) / 4
    value = split_int(bar.value, volume * typical) if volume.sum() else np.zeros(n + 1, dtype=np.int64)
    return MinuteBars(labels, o, h, lw, c, volume, value)
