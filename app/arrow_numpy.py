"""NumPy arrays into Arrow and back through their buffers, without pyarrow's pandas shim.

pyarrow imports pandas the first time a process converts anything through its Python-to-Arrow
or Arrow-to-NumPy paths (``pa.array``, ``pa.scalar``, ``Array.to_numpy``): its shim checks each
input for pandas types. A feature worker needs nothing from pandas, and that import was about
0.3 s of every fresh worker's one-time cost (docs/BENCHMARKS.md). These functions build the same
arrays from their buffers: zero-copy both ways for null-free numeric columns, as before.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

#: Arrow types whose values buffer is laid out as the NumPy dtype's array.
_NUMERIC = {pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64(),
            pa.float32(), pa.float64()}  # fmt: skip


def numpy_of(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A column as NumPy, as ``to_numpy`` gives it: a read-only view of Arrow's buffer for one
    null-free numeric chunk, a writable copy of several (numba compiles a kernel once per
    writability of its arguments, so the same inputs keep getting the same kind); other columns go
    through ``to_numpy``."""
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            values = values.chunk(0)
        elif values.type in _NUMERIC and not values.null_count:
            parts = [numpy_of(c) for c in values.chunks] or [np.zeros(0, values.type.to_pandas_dtype())]
            return np.concatenate(parts)
        else:
            values = values.combine_chunks()
    if values.type not in _NUMERIC or values.null_count:
        return values.to_numpy(zero_copy_only=False)
    dtype = np.dtype(values.type.to_pandas_dtype())
    view = np.frombuffer(values.buffers()[1], dtype, len(values), values.offset * dtype.itemsize)
    view.flags.writeable = False  # Arrow's memory is immutable (and may be shared with other arrays)
    return view


def arrow_of(values: np.ndarray, type: pa.DataType | None = None, mask: np.ndarray | None = None) -> pa.Array:
    """``pa.array(values, type, mask=mask)`` for a 1-d numeric or bool array (``mask`` True = null).

    The values are not copied (the Arrow array keeps the NumPy one alive) unless they are bool
    (Arrow packs them into bits) or ``type`` differs from their dtype (then cast by Arrow).
    """
    values = np.ascontiguousarray(values)
    if values.ndim != 1:
        raise ValueError(f"arrow_of takes a 1-d array, got shape {values.shape}")
    if values.dtype == np.bool_:
        own, data = pa.bool_(), pa.py_buffer(np.packbits(values, bitorder="little"))
    else:
        own, data = pa.from_numpy_dtype(values.dtype), pa.py_buffer(values)
    nulls = 0 if mask is None else int(np.count_nonzero(mask))
    validity = pa.py_buffer(np.packbits(~np.asarray(mask, bool), bitorder="little")) if nulls else None
    array = pa.Array.from_buffers(own, len(values), [validity, data], null_count=nulls)
    return array if type is None or type == own else array.cast(type)


def strings_of(values: list[str]) -> pa.Array:
    """``pa.array(values, pa.string())`` for a list of str without nulls."""
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers)
