"""``build_report``: ``performance_report.json``, the PNG plots and ``summary.md`` of one run folder.

Everything can come from the folder itself (saved config, data manifest, metrics.json, the saved
evaluation, or predictions.parquet plus the stored bars), so an old run's report can be rebuilt;
what the pipeline passes in (timings, resources, a fresh evaluation) takes precedence.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from app import run_folder
from app.contracts import KST
from app.errors import AppError
from app.evaluate.jsonable import json_ready
from app.evaluate.results import Evaluation
from app.evaluate.stage import evaluate_folder, settings_from
from app.report import plots_eval, plots_run, sources
from app.report.config import ReportConfig
from app.report.sources import lookup
from app.report.schema import SCHEMA_VERSION, validate_report
from app.report.style import caption
from app.report.summary_md import render
from app.report.throughput import resources as measure_resources
from app.report.throughput import stage_table
from app.run_folder import RunFolder

log = logging.getLogger(__name__)

REPORT_FILE = run_folder.REPORT
SUMMARY_FILE = run_folder.SUMMARY_MD


def _plain(config: Any) -> dict | None:
    """The run's typed config as the plain dict the report shows (a dict passes through)."""
    if config is None or isinstance(config, dict):
        return config
    return dataclasses.asdict(config)


def _evaluation(run_dir: Path, resolved: dict | None, bars: pd.DataFrame | None, notes: list[str]) -> Evaluation | None:
    """The saved evaluation, else a fresh one from predictions.parquet and the bars, else None (noted)."""
    saved = Evaluation.load(run_dir)
    if saved is not None and bars is None:
        return saved
    if not (run_dir / run_folder.PREDICTIONS).exists():
        notes.append("no predictions.parquet in the run folder: no forecast or backtest results")
        return None
    try:
        settings = settings_from(lookup(resolved, "evaluate"), lookup(resolved, "label.horizon", 1))
        store_root, freq = lookup(resolved, "store.root", "data"), str(lookup(resolved, "data.freq", "D"))
        return evaluate_folder(run_dir, settings, store_root, freq, bars)
    except AppError as exc:
        notes.append(f"evaluation could not be rebuilt: {exc.one_line()}")
        log.warning("evaluation could not be rebuilt: %s", exc.one_line())
        return None


def _plots(run_dir: Path, ev: Evaluation | None, history: list[dict], best_epoch: Any, stages: list[dict],
           rc: ReportConfig, sweep: Mapping[str, Any] | None) -> dict[str, str]:
    made: dict[str, Path] = sources.sweep_plots(sweep, run_dir)  # drawn by the tune stage
    if history:
        made["training"] = plots_run.plot_training(history, run_dir / "loss.png", best_epoch=best_epoch, dpi=rc.dpi)
    if ev is not None:
        made["ic"] = plots_eval.plot_ic(ev.ic_daily, run_dir / "ic.png", window=rc.ic_window, dpi=rc.dpi)
        if not ev.backtest_daily.empty:
            made["backtest"] = plots_eval.plot_backtest(ev.backtest_daily, run_dir / "backtest.png", dpi=rc.dpi)
            no_book = tuple(n for n, m in ev.summary["models"].items() if not m.get("backtest"))
            made["models"] = plots_eval.plot_models(ev.backtest_daily, run_dir / "models.png", without_book=no_book,
                                                    dpi=rc.dpi)
        made["scatter"] = plots_eval.plot_scatter(ev.oos, run_dir / "scatter.png", max_points=rc.scatter_points, dpi=rc.dpi)
    if stages:
        made["throughput"] = plots_run.plot_throughput(stages, run_dir / "throughput.png", dpi=rc.dpi)
    return {k: p.name for k, p in made.items()}


def _captioned_plots(source: dict | None, *args: Any) -> dict[str, str]:
    """Every plot names the market its data come from, so none is mistaken for real results."""
    with caption(f"data: {source['label']}" if source else None):
        return _plots(*args)


def build_report(run_dir: str | Path, *, evaluation: Evaluation | None = None, config: Any = None,
                 stage_timings: Mapping[str, Any] | None = None, resources: Mapping[str, Any] | None = None,
                 history: list[dict] | None = None, bars: pd.DataFrame | None = None,
                 report_cfg: ReportConfig | None = None) -> dict:
    """Write performance_report.json, the plots and summary.md into ``run_dir``; returns the report."""
    run_dir = Path(run_dir).resolve()
    rc, notes = report_cfg or ReportConfig(), []
    resolved, redacted = sources.redact(_plain(config) if config is not None else sources.read_config(run_dir))
    metrics = sources.read_json(run_dir / sources.METRICS_FILE)
    manifest = sources.read_json(run_dir / sources.MANIFEST_FILE)
    timings = stage_timings if stage_timings is not None else sources.read_json(run_dir / sources.TIMINGS_FILE)
    ev = evaluation if evaluation is not None else _evaluation(run_dir, resolved, bars, notes)
    history = history if history is not None else list((metrics or {}).get("history") or [])
    stages = stage_table(timings, manifest, metrics)
    sweep = sources.read_json(run_dir / sources.SWEEP_FILE)
    source = sources.data_source(manifest)
    report = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": dt.datetime.now(KST).isoformat(timespec="seconds"),
        "run": {"dir": str(run_dir), "name": f"{run_dir.parent.name}/{run_dir.name}",
                "experiment": lookup(resolved, "experiment_name")},
        "config": {"digest": sources.config_digest(resolved), "resolved": resolved, "redacted_keys": redacted},
        "data": sources.manifest_summary(manifest),
        "data_source": source,
        "stages": stages,
        "resources": measure_resources(resources, stages),
        "environment": sources.read_json(run_dir / sources.ENV_FILE),
        "training": sources.training_summary(metrics) or ({"epochs_run": len(history)} if history else None),
        "evaluation": ev.summary if ev is not None else None,
        "sweep": sources.sweep_summary(sweep),
        "plots": _captioned_plots(source, run_dir, ev, history, (metrics or {}).get("best_epoch"), stages, rc, sweep),
        "notes": notes,
    }
    report = json_ready(report)
    validate_report(report)
    folder = RunFolder(run_dir)
    folder.write_json(REPORT_FILE, report, allow_nan=False)
    folder.write_text(SUMMARY_FILE, render(report))
    log.info("report written to %s", run_dir / REPORT_FILE)
    return report
