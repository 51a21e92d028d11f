"""Fused elementwise kernels for the features engine, compiled by numba (``cache=True``, like
:mod:`app.features.rolling_kernels`).

Each replaces a chain of numpy operations that made one full pass (and one temporary array) per
step: a quotient cleaned of ``±inf`` was four passes (divide, ``isfinite``, invert, masked store);
a float64 column cleaned of ``±inf`` and cast to the stored float32 was three. Here each is one
pass, with the same results bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def divide_finite(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` of two 1-D float64 arrays, NaN where the quotient is not finite."""
    out = np.empty(num.shape[0])
    for i in range(num.shape[0]):
        q = num[i] / den[i]
        out[i] = q if np.isfinite(q) else np.nan
    return out


@njit(cache=True)
def finite_float32(a: np.ndarray) -> np.ndarray:
    """A 1-D float64 array as float32 with ``±inf`` made NaN first (a finite value past float32's
    range still rounds to ``±inf``, as ``astype`` does)."""
    out = np.empty(a.shape[0], np.float32)
    for i in range(a.shape[0]):
        x = a[i]
        out[i] = np.nan if np.isinf(x) else x
    return out


@njit(cache=True)
def month_and_day(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Month of the year (0-11) and day of the month (0-30) of each day number since 1970-01-01,
    by Hinnant's ``civil_from_days`` in integer arithmetic: numpy's ``datetime64[D]`` to ``[M]``
    conversion it replaces was most of the calendar features' cost."""
    month, day = np.empty(days.shape[0], np.int64), np.empty(days.shape[0], np.int64)
    for i in range(days.shape[0]):
        z = days[i] + 719468
        era = z // 146097  # floor division: numba keeps Python's semantics, so no C-style adjustment
        doe = z - era * 146097
        yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        day[i] = doy - (153 * mp + 2) // 5
        month[i] = mp + 2 if mp < 10 else mp - 10
    return month, day
