"""Windows for a sweep: one split and scaler, and one materialized set per searched ``seq_len``.

Everything is built on the driver before the first trial starts, while every CPU is free: a
trial that holds a CPU and waits for Ray Data tasks to build its windows can starve them on a
small machine. Trials then share the materialized blocks through the object store.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass
from typing import Any

from app.features.windows import WindowData, make_window_datasets
from app.errors import DataError
from app.train.driver_node import held_by_driver_node

log = logging.getLogger(__name__)


@dataclass
class TrialWindows:
    """Materialized train/val windows of one length, plus what each checkpoint's meta.json needs."""

    seq_len: int
    train: Any  # ray.data MaterializedDataset
    val: Any
    n_train: int
    n_features: int
    extra_meta: dict[str, Any]


def with_seq_len(base: WindowData, seq_len: int) -> WindowData:
    """The same features, split and scaler with another window length (lazy datasets)."""
    return dataclasses.replace(base, seq_len=int(seq_len), _datasets={})


def extra_meta(data: WindowData, label: Any) -> dict[str, Any]:
    """The train stage's checkpoint metadata, so the realtime path and ``predict`` read it the same way."""
    return {"feature_names": data.feature_names, "seq_len": data.seq_len, "label": asdict(label),
            "scaler": data.scaler.to_dict()}  # fmt: skip


def materialize(data: WindowData, label: Any) -> TrialWindows:
    train, val = held_by_driver_node(data.train.materialize()), held_by_driver_node(data.val.materialize())
    n_train, n_val = train.count(), val.count()
    if n_train < 1 or n_val < 2:
        raise DataError(f"seq_len {data.seq_len}: {n_train} train and {n_val} validation windows",
                        "widen the date range or shorten windows.seq_len")  # fmt: skip
    log.info("windows seq_len=%d: %d train, %d validation", data.seq_len, n_train, n_val)
    return TrialWindows(data.seq_len, train, val, n_train, data.n_features, extra_meta(data, label))


def build_windows(features_path: str, cfg: Any, seq_lens: list[int]) -> tuple[WindowData, dict[int, TrialWindows]]:
    """The base windows (split and scaler fitted once) and one materialized set per length."""
    base = make_window_datasets(features_path, cfg)
    sets = {int(n): materialize(with_seq_len(base, n), cfg.label) for n in seq_lens}
    return base, sets
