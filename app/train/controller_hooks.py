"""Ray Train's controller hooks, a developer API: the base of the run's controller watchers.

The public ``UserCallback`` only sees reports; watching the worker group start (too few workers
fit, a node that is gone) needs the controller's own callback. ``ray>=2.50`` is all the project
asks for, so a Ray that moved or dropped it must not stop training: the watchers are then left out
(:func:`available`) and training runs as Ray alone would, with a warning.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

try:
    from ray.train.v2._internal.execution.callback import ControllerCallback
except ImportError:  # another Ray: the watchers' base is a plain object and they are not used
    ControllerCallback = object  # type: ignore[misc,assignment]


def available() -> bool:
    """Whether this Ray has the controller hooks; says once per call when it does not."""
    if ControllerCallback is object:
        log.warning("this Ray has no Train controller hooks: a run that cannot fit train.min_workers waits "
                    "for resources, and a restart after a node loss may wait out one start timeout")
        return False
    return True
