"""Where the window blocks of a sweep or a training run live, on the Ray cluster this process joins.

``python -m tests.cluster_blocks_probe`` (as a ``ray job submit`` entrypoint): builds a small
materialized dataset whose blocks are made on every node in turn (pinned there: a ``SPREAD``
strategy is only a preference, and the scheduler may keep every task on one node), of 800 KB each
(an object under 100 KB would be kept in its owner's memory, on no node's object store), passes it through
:func:`app.train.driver_node.held_by_driver_node` and prints one JSON line: the nodes holding the
blocks before and after, the driver's node, whether the rows came back unchanged, and whether an
actor (a sweep trial) handed the copy leaves it as it is instead of copying it again.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import ray
from ray.data.extensions import ArrowTensorArray
from ray.experimental import get_object_locations
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from app.train.driver_node import held_by_driver_node


def _nodes(ds) -> list[str]:
    refs = [ref for bundle in ds.iter_internal_ref_bundles() for ref in bundle.block_refs]
    return sorted({node for loc in get_object_locations(refs).values() for node in loc["node_ids"]})


@ray.remote(num_cpus=0.5)
def _block(first: int) -> pa.Table:
    """Four rows of 50,000 float32s (800 KB): ids ``first`` to ``first + 3``."""
    ids = np.arange(first, first + 4)
    x = np.repeat(ids[:, None], 50_000, axis=1).astype(np.float32)
    return pa.table({"id": ids, "x": ArrowTensorArray.from_numpy(x)})


def _spread_dataset(blocks: int = 16):
    """A materialized dataset whose blocks were made on every alive node in turn."""
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))
    refs = [_block.options(scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=False))
            .remote(4 * i) for i in range(blocks)]
    return ray.data.from_arrow_refs(refs)


@ray.remote(num_cpus=0)
class _Trial:
    """Stands in for a sweep trial: an actor handed the driver's datasets."""

    def passes_through(self, ds) -> bool:
        return held_by_driver_node(ds) is ds


def main() -> None:
    ray.init(address="auto")
    spread = _spread_dataset()
    held = held_by_driver_node(spread)
    where = {"spread": _nodes(spread), "held": _nodes(held)}  # before reading rows copies blocks about
    rows = [[(int(r["id"]), float(r["x"].sum())) for r in d.take_all()] for d in (spread, held)]
    in_actor = ray.get(_Trial.remote().passes_through.remote(held))
    print("blocks:", json.dumps({**where, "driver": ray.get_runtime_context().get_node_id(),
                                 "same_rows": rows[0] == rows[1], "untouched_in_an_actor": in_actor}))


if __name__ == "__main__":
    main()
