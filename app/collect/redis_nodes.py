"""Redis as every node sees it: one small Ray task pinned to each alive node pings the URL.

The collection actors pace through one limiter in Redis from whichever node they run on, so a URL
that answers on the driver's node proves nothing about the others: ``redis://127.0.0.1:6379`` is a
different machine (or none) on each node. Before collecting on a multi-node cluster each node is
asked once; the first that cannot reach Redis fails the run in one line that names it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.errors import ServiceError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 60.0  # a node must run a 0-CPU task within this (a busy or dying node fails too)


@dataclass(frozen=True)
class NodeReach:
    node_id: str
    address: str  # the node's IP, as Ray knows it
    error: str = ""  # "" when Redis answered


def _ping(url: str, node_id: str, address: str) -> NodeReach:
    """Runs on the node: one PING with a short timeout, with the password the node holds."""
    import redis

    from app.kis.redis_conn import on_this_node

    try:
        redis.Redis.from_url(on_this_node(url), socket_connect_timeout=2, socket_timeout=2).ping()
        return NodeReach(node_id, address)
    except (redis.RedisError, OSError) as exc:
        return NodeReach(node_id, address, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _where(url: str) -> str:
    """The URL without its password, for the error line."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def probe_nodes(url: str) -> list[NodeReach]:
    """Ping ``url`` from every alive node (Ray must be up); one result per node, in node order.
    The tasks get ``url`` without its password: each node adds its own ``REDIS_URL``'s."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from app.kis.redis_conn import without_password

    url = without_password(url)

    ping = ray.remote(num_cpus=0, max_retries=0)(_ping)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [ping.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
        url, n["NodeID"], n.get("NodeManagerAddress", "?")) for n in nodes]
    out = []
    for node, ref in zip(nodes, refs):
        try:
            out.append(ray.get(ref, timeout=PROBE_TIMEOUT_S))
        except Exception as exc:  # the node died, or never ran the task: it cannot collect either
            out.append(NodeReach(node["NodeID"], node.get("NodeManagerAddress", "?"), type(exc).__name__))
    return out


def check_every_node(url: str) -> int:
    """Raise a one-line ServiceError naming the first node that cannot reach ``url``; returns the nodes."""
    results = probe_nodes(url)
    for r in results:
        if r.error:
            raise ServiceError(
                f"Redis at {_where(url)} does not answer from node {r.address} (id {r.node_id[:12]}): {r.error}",
                "give redis.url (or REDIS_URL) an address every node can reach, not 127.0.0.1, and export "
                "REDIS_URL with its password on every node before ray start when Redis needs one, "
                "or set redis.url=null to collect without the shared limiter")
    log.info("Redis at %s answers from all %d nodes", _where(url), len(results))
    return len(results)
