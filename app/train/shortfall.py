"""A training run that cannot fit its fewest workers fails, in one line, instead of waiting forever.

Ray Train waits for a worker group's resources without end: an elastic group (``ScalingConfig
(num_workers=(min, max))``) with fewer than ``min`` workers' CPUs left decides, every second, not
to start; a fixed group retries its start after each timeout. After a node loss that no node
replaces, the job would hang. :class:`ShortfallWatch` runs in Ray Train's controller and counts
what the alive nodes can hold (their total resources, so workers already running count as
fitting); once fewer than the fewest workers have fitted for :func:`wait_s` seconds while no group
runs, it raises an :class:`~app.errors.AppError` that ``fit`` turns into the run's one-line error.
"""
from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Mapping

from app.errors import AppError
from app.train.controller_hooks import ControllerCallback

log = logging.getLogger(__name__)

#: How long fewer than the fewest workers may fit before the run fails. It covers a node that
#: restarts; an autoscaling cluster that launches a replacement needs longer (export the variable).
WAIT_ENV = "KRX_TRAIN_SHORTFALL_WAIT_S"
DEFAULT_WAIT_S = 120.0
CHECK_EVERY_S = 1.0
#: Controller states (besides the terminal ones) in which no group waits for resources.
SETTLED = {"RunningState", "ShuttingDownState"}


def wait_s() -> float:
    """The wait from the environment (read on the driver), else :data:`DEFAULT_WAIT_S`."""
    raw = os.environ.get(WAIT_ENV, "")
    try:
        return float(raw) if raw.strip() else DEFAULT_WAIT_S
    except ValueError:
        raise AppError(f"{WAIT_ENV}={raw!r} is not a number of seconds", f"export {WAIT_ENV}=120, or unset it")


def workers_that_fit(nodes: list[Mapping[str, Any]], per_worker: Mapping[str, float]) -> int:
    """Workers of ``per_worker`` resources the alive ``nodes`` can hold in all (a worker never spans nodes)."""
    wanted = {k: v for k, v in per_worker.items() if v > 0}
    total = 0
    for node in nodes:
        if not node.get("Alive"):
            continue
        have = node.get("Resources") or {}
        total += min((math.floor(have.get(k, 0.0) / v + 1e-9) for k, v in wanted.items()), default=0)
    return total


def shortfall_error(fits: int, need: int, per_worker: Mapping[str, float], nodes: list[Mapping[str, Any]],
                    waited_s: float) -> AppError:
    """The one line: what is left, what the run needs, how to go on."""
    alive = [n for n in nodes if n.get("Alive")]
    cpus = sum((n.get("Resources") or {}).get("CPU", 0.0) for n in alive)
    each = ", ".join(f"{v:g} {k}" for k, v in per_worker.items() if v > 0)
    return AppError(
        f"only {fits} of the {need} training workers train.min_workers asks for fit on the cluster's "
        f"{len(alive)} alive node(s) ({cpus:g} CPUs; {each} per worker), for {waited_s:.0f} s",
        f"lower train.min_workers (or train.cpus_per_worker) to what is left, or bring the nodes back, then "
        f"re-run with train.resume=true to continue from the last checkpoint; {WAIT_ENV} sets the wait")


class ShortfallWatch(ControllerCallback):
    """Raises once fewer than ``min_workers`` have fitted for ``wait`` seconds while no group runs."""

    def __init__(self, min_workers: int, per_worker: Mapping[str, float], wait: float) -> None:
        self.min_workers, self.per_worker, self.wait = int(min_workers), dict(per_worker), float(wait)
        self.short_since: float | None = None
        self.checked_at = float("-inf")

    def after_controller_state_update(self, previous_state: Any, current_state: Any) -> None:
        if current_state.is_terminal() or type(current_state).__name__ in SETTLED:
            self.short_since = None
            return
        now = time.monotonic()
        if now - self.checked_at < CHECK_EVERY_S:
            return
        self.checked_at = now
        self.check(now)

    def check(self, now: float) -> None:
        import ray

        nodes = ray.nodes()
        fits = workers_that_fit(nodes, self.per_worker)
        if fits >= self.min_workers:
            self.short_since = None
            return
        if self.short_since is None:
            self.short_since = now
            log.warning("%d of the %d training workers needed fit on the cluster now; failing in %.0f s "
                        "unless resources return", fits, self.min_workers, self.wait)
        elif now - self.short_since >= self.wait:
            raise shortfall_error(fits, self.min_workers, self.per_worker, nodes, now - self.short_since)
