"""NumPy <-> Arrow through buffers: the same arrays as pyarrow's own conversions."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from app.arrow_numpy import arrow_of, numpy_of, strings_of


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.float32, np.float64])
def test_arrow_of_equals_pa_array_and_numpy_of_reads_it_back(dtype):
    values = (np.arange(37) * 3 - 50).astype(dtype)
    ours = arrow_of(values)
    assert ours.equals(pa.array(values)) and ours.type == pa.from_numpy_dtype(np.dtype(dtype))
    back = numpy_of(ours)
    assert back.dtype == dtype and np.array_equal(back, values)
    assert np.shares_memory(back, values) and not back.flags.writeable  # no copy either way; Arrow's is immutable


def test_a_mask_makes_nulls_and_a_type_casts():
    values = np.array([1.5, np.nan, 3.0, 4.0, np.nan, 6.0, 7.0, 8.0, 9.0])
    mask = np.isnan(values)
    ours = arrow_of(values, mask=mask)
    assert ours.equals(pa.array(values, mask=mask)) and ours.null_count == 2
    seconds = np.array([0, 1_700_000_000, 5], np.int64)
    stamp = pa.timestamp("s", tz="Asia/Seoul")
    hidden = np.array([False, False, True])
    assert arrow_of(seconds, stamp, mask=hidden).equals(pa.array(seconds, pa.int64(), mask=hidden).cast(stamp))
    assert arrow_of(values, mask=np.zeros(len(values), bool)).null_count == 0  # NaN is a value, not a null


def test_bools_are_packed_into_bits():
    values = np.random.default_rng(0).random(21) < 0.5
    assert arrow_of(values).equals(pa.array(values))
    assert arrow_of(np.ones(0, bool)).equals(pa.array(np.ones(0, bool)))


def test_numpy_of_reads_slices_chunks_and_falls_back_for_nulls():
    whole = pa.array(np.arange(100, dtype=np.float64))
    assert np.array_equal(numpy_of(whole.slice(10, 5)), np.arange(10, 15))  # an offset into the buffer
    chunked = pa.chunked_array([whole.slice(0, 3), whole.slice(50, 2)])
    assert np.array_equal(numpy_of(chunked), [0, 1, 2, 50, 51])
    assert numpy_of(chunked).flags.writeable == chunked.to_numpy().flags.writeable  # a copy, as to_numpy's
    assert numpy_of(pa.chunked_array([], pa.int32())).dtype == np.int32
    assert np.array_equal(numpy_of(pa.chunked_array([whole.slice(7, 2)])), [7, 8])
    with_null = pa.array([1.0, None, 3.0])
    assert np.array_equal(numpy_of(with_null), with_null.to_numpy(zero_copy_only=False), equal_nan=True)
    with pytest.raises(ValueError, match="1-d"):
        arrow_of(np.zeros((2, 2)))


def test_strings_of_equals_pa_array():
    for values in (["000000", "005930", "한국"], [], [""]):
        assert strings_of(values).equals(pa.array(values, pa.string()))
