"""Settings of the report (``report:`` in the config), apart from the plotting code so that the
config schema can name them without importing matplotlib."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReportConfig:
    ic_window: int = 20  # dates in the rolling mean of the IC plot
    scatter_points: int = 4000  # above this many rows the scatter becomes a hexbin density
    dpi: int = 110
