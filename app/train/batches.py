"""Turning windows into the loop's batches: from Ray Data shards, or from in-memory arrays."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from ray.data.collate_fn import NumpyBatchCollateFn

from app.contracts import timestamps_as_int64


def _tensor(a: np.ndarray, dtype: np.dtype, pin: bool = False) -> torch.Tensor:
    """Arrow-backed arrays are read-only; torch needs a writable buffer, so copy those.

    ``pin``: copy straight into page-locked memory, so the copy to the GPU can run asynchronously
    (``non_blocking=True``) while the next batch is prepared.
    """
    a = np.ascontiguousarray(a, dtype=dtype)
    if pin:
        out = torch.empty(a.shape, dtype=torch.from_numpy(a[:0]).dtype, pin_memory=True)
        out.numpy()[...] = a
        return out
    return torch.from_numpy(a if a.flags.writeable else a.copy())


class WindowCollate(NumpyBatchCollateFn):
    """Ray Data numpy batch -> ``{"x", "y"[, "ts"]}`` tensors; the string columns are dropped.

    ``pin_memory``: the tensors are page-locked (for batches the loop copies to a GPU).
    """

    def __init__(self, with_ts: bool = False, pin_memory: bool = False) -> None:
        super().__init__()
        self.with_ts = with_ts
        self.pin_memory = pin_memory

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        pin = self.pin_memory
        out = {"x": _tensor(batch["x"], np.float32, pin), "y": _tensor(batch["y"], np.float32, pin)}
        if self.with_ts:
            out["ts"] = torch.from_numpy(timestamps_as_int64(batch["ts"]))
        return out


def array_batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    ts: np.ndarray | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """The same batches from in-memory arrays (single-process training, tests, the benchmark)."""
    order = np.random.default_rng(seed).permutation(len(x)) if shuffle else np.arange(len(x))
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y, np.float32))
    tt = torch.from_numpy(timestamps_as_int64(ts)) if ts is not None else None
    for start in range(0, len(x), batch_size):
        idx = torch.from_numpy(order[start : start + batch_size])
        batch = {"x": xt[idx], "y": yt[idx]}
        if tt is not None:
            batch["ts"] = tt[idx]
        yield batch
