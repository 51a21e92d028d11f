"""Materialized datasets whose blocks live on the driver's node, so losing another node loses none."""
from __future__ import annotations

from typing import Any


def held_by_driver_node(ds: Any) -> Any:
    """A materialized dataset's blocks copied into the driver's node (the driver puts each one).

    A block lost with a worker node is rebuilt by re-running the tasks that made it, and those
    need a free CPU: on a cluster whose surviving CPUs are all held by sweep trials or training
    workers, each of them reading the lost block would wait for ever (seen with two one-CPU nodes,
    one lost mid-sweep). Blocks the driver put live on its node and die only with the driver,
    which ends the run anyway. The price: a run's windows sit in the head node's object store
    (spilled to its disk when larger). The dataset is returned as it is on one node, where the
    blocks are there already, and in an actor (a sweep trial that trains through Ray Train): its
    datasets came from the driver, already held there, and blocks an actor put would die with it.
    """
    import ray

    if ray.get_runtime_context().get_actor_id() is not None:
        return ds
    if sum(1 for node in ray.nodes() if node.get("Alive")) < 2:
        return ds
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
