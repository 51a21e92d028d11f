"""Shared helpers of the benchmarks: peak RSS of a process tree, JSON output."""
from __future__ import annotations

import json
import sys
import threading
import time

import psutil


class PeakRss:
    """Samples the RSS of this process and all its children (Ray workers, the simulator) in a thread."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.every, self.peak, self._stop = every_s, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.every)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def gib(self) -> float:
        return round(self.peak / 1024**3, 3)


def emit(result: dict) -> None:
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
