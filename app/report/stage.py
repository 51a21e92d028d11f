"""The ``report`` stage, and the small record of stage timings the report reads."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.report.build import REPORT_FILE, build_report
from app.report.sources import TIMINGS_FILE
from app.run_folder import PREDICTIONS, SUMMARY_MD, RunFolder
from app.stage_registry import BaseStage

if TYPE_CHECKING:
    from app.config import AppConfig


def record_stage(run_dir: str | Path, stage: str, wall_s: float, **counts: Any) -> None:
    """Merge one stage's figures (``bars=``, ``rows=``, ``samples=``, ``requests=``, ``rate_limit=``) into stage_timings.json."""
    entry = {"wall_s": float(wall_s), **{k: v for k, v in counts.items() if v is not None}}
    RunFolder(run_dir).merge_json(TIMINGS_FILE, {stage: entry})


def run(cfg: AppConfig, run_dir: Path) -> dict:
    """Pipeline entry ``(cfg, run_dir)``. With ``run_dir=<folder>`` set in the config, rebuilds that run's
    report from its own files (and its own saved config); otherwise reports the current run."""
    if cfg.run_dir:
        return build_report(Path(str(cfg.run_dir)).expanduser(), report_cfg=cfg.report)
    return build_report(run_dir, config=cfg, report_cfg=cfg.report)


def run_compare(cfg: AppConfig, run_dir: Path) -> dict:
    """``stage=compare runs=[...]``: one table (CSV, Markdown) and plot over several runs, in this run's folder."""
    from app.report.compare import compare_runs

    runs = [Path(str(r)).expanduser().resolve() for r in cfg.runs]
    for run in runs:  # a finished run whose report was never built gets one now
        if not (run / REPORT_FILE).exists() and (run / PREDICTIONS).exists():
            build_report(run, report_cfg=cfg.report)
    paths = compare_runs(runs, run_dir)
    return {k: str(v) for k, v in paths.items()}


class ReportStage(BaseStage):
    def run(self, cfg: Any, run_dir: Path) -> dict:
        return run(cfg, run_dir)

    def after(self, cfg: Any, run_dir: Path, result: Any) -> None:
        """The run's result, as the console's last lines."""
        from app import console
        from app.console_text import result_lines

        if isinstance(result, dict):
            for line in result_lines(result, str(Path(result["run"]["dir"]) / SUMMARY_MD)):
                console.say("%s", line)


class CompareStage(BaseStage):
    def run(self, cfg: Any, run_dir: Path) -> dict:
        return run_compare(cfg, run_dir)


REPORT = ReportStage()
COMPARE = CompareStage()
