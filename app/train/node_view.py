"""An elastic group restarts on the nodes that are alive now, not on those of 20 s ago.

Ray Train's elastic policy sizes a new worker group from the reservation of Ray Data's
AutoscalingCoordinator, which re-reads the cluster's nodes only every 20 s. Right after a node
loss it still counts the lost node's CPUs, so the restart asks for a group that cannot be placed
and waits out the group start timeout before trying again with the right count: most of the time
from a loss to training resumed. :class:`FreshNodeView`, in Ray Train's controller, watches the
alive nodes while no group runs and, when they differ from those of the last running group, has
the coordinator re-read them at once (the recompute Ray offers its own callers for this).

A worker group usually fails before the GCS declares its node dead (a collective breaks within
a second or two; the GCS waits for missed health checks, some 15 s with Ray's defaults). So when a
running group fails, each node the GCS still counts is asked on its raylet's port: a port that
refuses the connection belongs to a raylet that is gone, and the restart waits (at most
:data:`SETTLE_S`) for the GCS to say so. A machine that vanished answers nothing rather than
refusing; its node is left to the health checks.
"""
from __future__ import annotations

import logging
import socket
import time
from typing import Any

from app.train.controller_hooks import ControllerCallback

log = logging.getLogger(__name__)

CHECK_EVERY_S = 0.5
SETTLE_S = 30.0  # the longest a restart waits for the GCS to declare a refusing node dead
PROBE_TIMEOUT_S = 1.0
REQUESTER = "krx-fresh-node-view"  # any id: the recompute re-reads the nodes for every requester


def alive_nodes() -> frozenset[str]:
    import ray

    return frozenset(n["NodeID"] for n in ray.nodes() if n.get("Alive"))


def refuses(host: str, port: int) -> bool:
    """True when nothing listens at ``host:port`` any more (a timeout proves nothing: False)."""
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def gone_raylets() -> set[str]:
    """Nodes the GCS counts alive whose raylet port refuses connections."""
    import ray

    return {n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("NodeManagerPort")
            and refuses(n.get("NodeManagerAddress", ""), int(n["NodeManagerPort"]))}


def await_declared_dead(nodes: set[str]) -> float:
    """Wait until the GCS no longer counts ``nodes`` alive (at most :data:`SETTLE_S`); the seconds waited."""
    began = time.monotonic()
    while alive_nodes() & nodes and time.monotonic() - began < SETTLE_S:
        time.sleep(0.25)
    return time.monotonic() - began


def recompute_reservations() -> None:
    """One tick of the AutoscalingCoordinator now: it re-reads the nodes and re-reserves for all."""
    import ray
    from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (
        get_or_create_autoscaling_coordinator,
    )

    coordinator = get_or_create_autoscaling_coordinator()
    ray.get(coordinator.get_reserved_resources.remote(REQUESTER, recompute=True), timeout=10)


class FreshNodeView(ControllerCallback):
    """Re-reads the coordinator's nodes when the alive nodes changed since the group last ran."""

    def __init__(self) -> None:
        self.seen: frozenset[str] | None = None  # the alive nodes when a group last started running
        self.checked_at = float("-inf")

    def after_controller_state_update(self, previous_state: Any, current_state: Any) -> None:
        running, was_running = (type(s).__name__ == "RunningState" for s in (current_state, previous_state))
        if running and not was_running:
            self.seen = alive_nodes()
        if running or current_state.is_terminal() or self.seen is None:
            return
        if was_running:  # the group just failed: a node may be dying that the GCS still counts
            self.settle()
        now = time.monotonic()
        if now - self.checked_at < CHECK_EVERY_S and not was_running:
            return
        self.checked_at = now
        self.refresh()

    def settle(self) -> None:
        gone = gone_raylets()
        if gone:
            waited = await_declared_dead(gone)
            log.info("%d node(s) lost their raylet: waited %.1f s for Ray to declare them dead", len(gone), waited)

    def refresh(self) -> None:
        alive = alive_nodes()
        if alive == self.seen:
            return
        try:
            recompute_reservations()
        except Exception as exc:  # the coordinator's own 20 s tick still comes
            log.warning("could not refresh Ray's view of the nodes: %s", type(exc).__name__)
            return
        log.info("alive nodes changed (%d -> %d): Ray's resource view re-read before the restart",
                 len(self.seen or ()), len(alive))
        self.seen = alive
