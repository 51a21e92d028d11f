"""``performance_report.json``, PNG plots and ``summary.md`` for a run; comparison across runs."""
from app.report.build import ReportConfig, build_report
from app.report.compare import compare_runs
from app.report.schema import REPORT_SCHEMA, validate_report
from app.report.stage import record_stage

__all__ = ["REPORT_SCHEMA", "ReportConfig", "build_report", "compare_runs", "record_stage", "validate_report"]
