"""``performance_report.json``, PNG plots and ``summary.md`` for a run; comparison across runs.

The names below are loaded on first use, so that ``app.report.config`` (read by the config schema)
does not import the plotting code and matplotlib.
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "REPORT_SCHEMA": "app.report.schema", "validate_report": "app.report.schema",
    "ReportConfig": "app.report.config", "build_report": "app.report.build",
    "compare_runs": "app.report.compare", "record_stage": "app.report.stage",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'app.report' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
