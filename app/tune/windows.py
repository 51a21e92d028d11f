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


def held_by_driver_node(ds: Any) -> Any:
    """A materialized dataset's blocks copied into the driver's node (the driver puts each one).

    A block lost with a worker node is rebuilt by re-running the tasks that made it, and those
    need a free CPU: on a cluster whose surviving CPUs are all held by trials, every trial that
    reads the lost block would wait for ever (seen with two one-CPU nodes, one lost mid-sweep).
    Blocks the driver put live on its node and die only with the driver, which ends the sweep
    anyway. The price: the sweep's windows sit in the head node's object store (spilled to its
    disk when larger).
    """
    import ray
    from ray.data._internal.logical.interfaces.logical_plan import LogicalPlan
    from ray.data._internal.logical.operators.from_operators import FromArrow
    from ray.data._internal.stats import DatasetStats
    from ray.data._internal.util import get_table_block_metadata_schema
    from ray.data.context import DataContext
    from ray.data.dataset import MaterializedDataset

    refs, metadata = [], []
    for ref in ds.to_arrow_refs():  # one block in the driver's memory at a time
        table = ray.get(ref)
        refs.append(ray.put(table))
        metadata.append(get_table_block_metadata_schema(table))
    # what ``ray.data.from_arrow_refs`` builds, with the blocks' metadata read here: it reads it in
    # tasks, which leave copies of the blocks on whichever nodes ran them
    ctx = DataContext.get_current().copy()
    stats = DatasetStats(metadata={"FromArrow": metadata}, parent=None)
    return MaterializedDataset(LogicalPlan(FromArrow(refs, metadata), ctx), ctx, stats)


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
