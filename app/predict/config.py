"""``predict.*``: which bars to score with a run's model bundle, and what to print."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class PredictConfig:
    """Dates are ``YYYY-MM-DD`` (a bare end date includes its whole day) or ISO date-times in KST."""

    start: Optional[str] = None  # first bar to score; None = the newest bar ("as of now")
    end: Optional[str] = None  # last bar to score; None or past the newest bar = the newest bar
    collect: bool = True  # bring the store up to date from the source first (incremental)
    show: int = 5  # rows of the printed top and bottom tables
    batch_size: int = 4096  # windows per forward pass
    # processes computing features; 1 = this process (faster in every run measured on 2 shared cores,
    # docs/BENCHMARKS.md), None = one per CPU
    workers: Optional[int] = 1
