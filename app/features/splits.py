"""Time splits (train / val / test) and walk-forward folds over the bar calendar, with an embargo.

A sample is the row whose ``ts`` ends a window; it belongs to a period when

* ``period.start <= ts <= period.sample_end`` (``sample_end`` is ``embargo_bars`` calendar bars
  before ``period.end``), and
* its label ended inside the period: ``label_ts <= period.end``.

The next period starts on the first calendar bar after ``period.end``, so no label of one period
reaches into the next (max train ``label_ts`` < min val ``ts``). The second rule also covers a
symbol whose halt stretches its label past the calendar embargo. The embargo is at least the
label's reach (``label.horizon`` bars, one more for open-to-open labels).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.contracts import KST
from app.features.feature_config import SplitConfig, WalkForwardConfig
from app.errors import ConfigError, DataError

PARTS = ("train", "val", "test")


def _iso(sec: int) -> str:
    return dt.datetime.fromtimestamp(int(sec), KST).isoformat()


def _sec(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


@dataclass(frozen=True)
class Period:
    """Inclusive bounds in epoch seconds."""

    start: int
    end: int
    sample_end: int

    def members(self, ts: np.ndarray, label_ts: np.ndarray) -> np.ndarray:
        """Mask of samples (ts, label_ts in epoch seconds; NaN = no label) that belong here."""
        with np.errstate(invalid="ignore"):
            return (ts >= self.start) & (ts <= self.sample_end) & (label_ts <= self.end)

    def to_dict(self) -> dict[str, str]:
        return {"start": _iso(self.start), "end": _iso(self.end), "sample_end": _iso(self.sample_end)}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Period:
        return cls(_sec(data["start"]), _sec(data["end"]), _sec(data["sample_end"]))


@dataclass(frozen=True)
class Split:
    train: Period
    val: Period
    test: Period
    embargo_bars: int

    def period(self, part: str) -> Period:
        if part not in PARTS:
            raise ConfigError(f"unknown split part {part!r}", f"use one of {', '.join(PARTS)}")
        return getattr(self, part)

    def to_dict(self) -> dict[str, Any]:
        return {**{p: self.period(p).to_dict() for p in PARTS}, "embargo_bars": self.embargo_bars}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        return cls(*(Period.from_dict(data[p]) for p in PARTS), embargo_bars=int(data["embargo_bars"]))


def _bound(calendar: np.ndarray, text: str, key: str, end: bool) -> int:
    """Calendar index of the first bar on/after (start) or last bar on/before (end) a date."""
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not a date", f"write {key}=YYYY-MM-DD") from None
    stamp = stamp.tz_localize(KST) if stamp.tzinfo is None else stamp
    if end and len(str(text)) <= 10:  # a bare date includes its whole day
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    sec = int(stamp.timestamp())
    return int(np.searchsorted(calendar, sec, side="right") - 1) if end else int(np.searchsorted(calendar, sec))


def embargo_of(cfg: SplitConfig, reach: int) -> int:
    embargo = reach if cfg.embargo_bars is None else int(cfg.embargo_bars)
    if embargo < reach:
        raise ConfigError(
            f"split.embargo_bars={embargo} is shorter than the label's reach of {reach} bars",
            f"use split.embargo_bars>={reach} or leave it null",
        )
    return embargo


def split_from_indices(calendar: np.ndarray, bounds: list[tuple[int, int]], embargo: int) -> Split:
    """A Split from (first, last) calendar indices of train, val and test."""
    periods = []
    for part, (first, last) in zip(PARTS, bounds):
        if last - first < embargo:
            raise ConfigError(
                f"split: the {part} period has {max(0, last - first + 1)} bars, too few for an embargo of {embargo}",
                "move the split dates or fractions so every period is longer than the embargo",
            )
        periods.append(Period(int(calendar[first]), int(calendar[last]), int(calendar[last - embargo])))
    return Split(*periods, embargo_bars=embargo)


def resolve_split(calendar: np.ndarray, cfg: SplitConfig, reach: int) -> Split:
    """The train/val/test split of a sorted calendar (epoch seconds) from dates or fractions."""
    if len(calendar) < 3:
        raise DataError(f"the features cover only {len(calendar)} bars", "collect a longer history")
    embargo = embargo_of(cfg, reach)
    first = _bound(calendar, cfg.train_start, "split.train_start", False) if cfg.train_start else 0
    span = len(calendar) - first
    if not (0 < cfg.train_frac and 0 < cfg.val_frac and cfg.train_frac + cfg.val_frac < 1):
        raise ConfigError("split fractions must satisfy 0 < train_frac, 0 < val_frac, sum < 1", "e.g. 0.7 and 0.15")
    train_end = (
        _bound(calendar, cfg.train_end, "split.train_end", True) if cfg.train_end
        else first + int(round(span * cfg.train_frac)) - 1
    )  # fmt: skip
    val_end = (
        _bound(calendar, cfg.val_end, "split.val_end", True) if cfg.val_end
        else first + int(round(span * (cfg.train_frac + cfg.val_frac))) - 1
    )  # fmt: skip
    test_end = _bound(calendar, cfg.test_end, "split.test_end", True) if cfg.test_end else len(calendar) - 1
    if not first <= train_end < val_end < test_end:
        raise ConfigError(
            "split dates are out of order or outside the data",
            f"pick dates between {_iso(calendar[0])[:10]} and {_iso(calendar[-1])[:10]}"
            " with train_end < val_end < test_end",
        )
    bounds = [(first, train_end), (train_end + 1, val_end), (val_end + 1, test_end)]
    return split_from_indices(calendar, bounds, embargo)


def walk_forward(calendar: np.ndarray, cfg: WalkForwardConfig, embargo: int) -> list[Split]:
    """Rolling (or expanding) folds: train, val, test back to back, shifted by ``step_bars``."""
    step = int(cfg.step_bars or cfg.test_bars)
    span = cfg.train_bars + cfg.val_bars + cfg.test_bars
    if step < 1 or min(cfg.train_bars, cfg.val_bars, cfg.test_bars) < 1:
        raise ConfigError("split.walk_forward bars must be positive", "e.g. train_bars=750 val_bars=125 test_bars=125")
    folds = []
    for offset in range(0, len(calendar) - span + 1, step):
        first = 0 if cfg.expanding else offset
        t_end = offset + cfg.train_bars - 1
        v_end = t_end + cfg.val_bars
        bounds = [(first, t_end), (t_end + 1, v_end), (v_end + 1, v_end + cfg.test_bars)]
        folds.append(split_from_indices(calendar, bounds, embargo))
    if not folds:
        raise ConfigError(
            f"walk-forward needs {span} bars, the features cover {len(calendar)}",
            "shorten split.walk_forward.train_bars/val_bars/test_bars",
        )
    return folds[-cfg.max_folds :] if cfg.max_folds else folds
