"""Peak resident memory of the whole process tree while a stage runs: the driver and its children.

A local Ray instance (raylet, GCS, every worker and actor) descends from the driver, so the tree
is what the run costs the machine; on a joined cluster only this node's part of it is seen.
Each process's RSS is added, so pages shared between processes (the object store, libraries)
count once per process that maps them: an upper bound, as the operating system reports it.
"""
from __future__ import annotations

import threading
from typing import Any

import psutil

MB = 1024**2


def tree_rss() -> tuple[int, int]:
    """(RSS of this process, RSS of this process and all its descendants) in bytes, now."""
    me = psutil.Process()
    own = me.memory_info().rss
    total = own
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:  # exited meanwhile
            pass
    return own, total


class PeakTreeMemory:
    """A context manager sampling :func:`tree_rss` in a daemon thread every ``every_s`` seconds."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s = every_s
        self.driver_peak = self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-tree-memory", daemon=True)

    def _sample(self) -> None:
        own, total = tree_rss()
        self.driver_peak, self.tree_peak = max(self.driver_peak, own), max(self.tree_peak, total)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def __enter__(self) -> "PeakTreeMemory":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def figures(self) -> dict[str, Any]:
        """What ``stage_timings.json`` records for the stage."""
        return {"peak_rss_mb": round(self.tree_peak / MB, 1), "driver_peak_rss_mb": round(self.driver_peak / MB, 1)}
