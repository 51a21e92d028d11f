"""The fused elementwise kernels give what the numpy chains they replaced gave, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from app.features.elementwise import finite_float32, month_and_day
from app.features.feature_compute import features_schema
from app.features.panel import safe_div


def numpy_safe_div(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(num / den, dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def awkward(shape, seed):
    """Values with zeros, NaN, ±inf and huge magnitudes mixed in."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape)
    a.flat[::7] = 0.0
    a.flat[::11] = np.nan
    a.flat[::13] = np.inf
    a.flat[::17] = -np.inf
    a.flat[::19] = 1e300
    return a


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(500,), (120, 7), (1, 9), (9, 1)])
def test_safe_div_equals_numpy(shape, order):
    num, den = (np.asarray(awkward(shape, s), order=order) for s in (1, 2))
    got, want = safe_div(num, den), numpy_safe_div(num, den)
    assert np.array_equal(got, want, equal_nan=True)
    assert got.shape == want.shape and (got.flags.f_contiguous if order == "F" else got.flags.c_contiguous)
    assert not np.isinf(got).any()


def test_safe_div_of_mixed_layouts_and_broadcasts_falls_back_to_numpy():
    num = np.asfortranarray(awkward((50, 4), 3))
    for den in (np.ascontiguousarray(awkward((50, 4), 4)), awkward((4,), 5), 2.0, awkward((50, 4), 6)[::2].repeat(2, 0)):
        assert np.array_equal(safe_div(num, den), numpy_safe_div(num, den), equal_nan=True)


def test_finite_float32_equals_clearing_inf_then_astype():
    a = awkward((2_000,), 7)
    with np.errstate(over="ignore"):
        want = np.where(np.isinf(a), np.nan, a).astype(np.float32)  # 1e300 still overflows to inf, as astype does
    got = finite_float32(a)
    assert got.dtype == np.float32 and np.array_equal(got, want, equal_nan=True)
    assert np.isinf(got).sum() == np.isinf(want).sum() > 0


def test_month_and_day_equal_numpy_datetimes():
    days = np.r_[np.arange(-800_000, 800_000, 37), -1, 0, 59, 60, 11_016, 11_017]  # 1970 +- 2,000 years, leap days
    month, day = month_and_day(days.astype(np.int64))
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    assert np.array_equal(month, m.astype(np.int64) % 12)
    assert np.array_equal(day, (d - m.astype("datetime64[D]")).astype(np.int64))


def test_features_schema_declares_only_the_labels_nullable():
    schema = features_schema(["f1", "f2"], ranked=True)
    assert [f.name for f in schema if f.nullable] == ["label", "label_ts", "label_rank", "label_rank_ts"]
    assert schema.field("f1").type.bit_width == 32
