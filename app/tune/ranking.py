"""How trials are ranked: the running best of a metric, where NaN never wins.

Shared by the trial loops (``direct``, ``nested``), the sweep and its results, so none of them
imports another for it.
"""
from __future__ import annotations

import math
from typing import Any


def best_key(metric: str) -> str:
    return f"best_{metric}"


def running_best(best: float | None, value: Any, mode: str) -> float:
    """The best value so far; NaN never wins, and a trial with no finite value ranks last (±inf)."""
    worst = math.inf if mode == "min" else -math.inf
    current = worst if best is None else best
    try:
        v = float(value)
    except (TypeError, ValueError):
        return current
    if not math.isfinite(v):
        return current
    return min(current, v) if mode == "min" else max(current, v)


def best_of(rows: list[dict[str, Any]], metric: str, mode: str) -> float | None:
    best = None
    for row in rows:
        best = running_best(best, row.get(metric), mode)
    return best
