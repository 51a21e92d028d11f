"""Helpers shared by the kis tests."""
from __future__ import annotations


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    """Most stamps in any closed window of ``window`` seconds."""
    stamps = sorted(stamps)
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best
