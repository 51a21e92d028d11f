"""Release the worker placement groups a stopped ``trainer`` trial leaves behind.

When ASHA stops a trial, Tune kills the trial's process, and with it the ``TorchTrainer``
controller. Ray Train V2 then relies on a detached ``PlacementGroupCleaner`` to free the worker
group's CPUs; that cleaner asks the State API for the controller's state and, on a machine with
more than one Ray instance, fails ("Found multiple active Ray instances") and never frees them.
The CPUs stay reserved and the next trials' worker groups time out waiting. After every trial
that ends, this sweep frees the groups of its own job that look exactly like a worker group,
hold no live actor and are older than a start-up grace period.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import ray
from ray.tune import Callback

log = logging.getLogger(__name__)

GRACE_S = 20.0  # a new worker group gets this long to place its workers before it counts as orphaned


def _state_address() -> str:
    return ray.get_runtime_context().gcs_address  # explicit: never "auto" on a shared machine


def orphaned_groups(bundle: dict[str, float], count: int, grace_s: float = GRACE_S) -> list[str]:
    """Ids of this job's live placement groups of ``count`` × ``bundle`` with no live actor in them."""
    from ray.util.state import list_actors, list_placement_groups

    address, job = _state_address(), ray.get_runtime_context().get_job_id()
    groups = list_placement_groups(address=address, filters=[("state", "=", "CREATED")], detail=True,
                                   raise_on_missing_output=False)  # fmt: skip
    actors = list_actors(address=address, filters=[("state", "=", "ALIVE")], detail=True,
                         raise_on_missing_output=False)  # fmt: skip
    busy = {a.placement_group_id for a in actors if a.placement_group_id}
    now_ns = time.time_ns()
    out = []
    for g in groups:
        shape = [dict(b.get("unit_resources") or {}) for b in g.bundles]
        created = int((g.stats or {}).get("creation_request_received_ns") or now_ns)
        if (g.creator_job_id == job and not g.is_detached and g.placement_group_id not in busy
                and shape == [bundle] * count and (now_ns - created) / 1e9 > grace_s):  # fmt: skip
            out.append(g.placement_group_id)
    return out


def release_orphaned_groups(bundle: dict[str, float], count: int, grace_s: float = GRACE_S) -> int:
    """Remove the orphaned worker groups; returns how many. Never raises (a cleanup must not fail a sweep)."""
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    try:
        ids = orphaned_groups(bundle, count, grace_s)
        for pg_id in ids:
            remove_placement_group(PlacementGroup(ray.PlacementGroupID.from_hex(pg_id)))
    except Exception as exc:  # State API unavailable, a group removed meanwhile, ...
        log.warning("could not release orphaned worker groups: %s", exc)
        return 0
    if ids:
        log.warning("released %d worker placement group(s) left by stopped trials", len(ids))
    return len(ids)


class ReleaseWorkerGroups(Callback):
    """After each ``trainer`` trial ends, free what its killed trainer could not (see module doc)."""

    def __init__(self, bundle: dict[str, float], num_workers: int) -> None:
        self.bundle = {k: float(v) for k, v in bundle.items()}  # one worker's reservation
        self.count = int(num_workers)

    def _release(self) -> None:
        release_orphaned_groups(self.bundle, self.count)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._release()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._release()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        release_orphaned_groups(self.bundle, self.count, grace_s=0.0)
