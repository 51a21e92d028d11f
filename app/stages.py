"""Runs the stages a config names, in pipeline order, each timed and recorded for the report."""
from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from app import console
from app.config import stages_of, symbols_of
from app.console_text import result_lines, stage_line

log = logging.getLogger(__name__)

#: stage -> "module:function" taking (cfg, run_dir); stages missing here are not built yet.
RUNNERS: dict[str, str] = {
    "collect": "app.data.collect:run",
    "features": "app.data.features:run_stage",
    "train": "app.train.stage:run",
    "tune": "app.tune.stage:run",
    "evaluate": "app.evaluate.stage:run",
    "report": "app.report.stage:run",
    "compare": "app.report.stage:run_compare",
    "predict": "app.predict.stage:run",
    "doctor": "app.machine.stage:run_doctor",
}

#: Stages that run on Ray. Ray is started before the first of them and its start-up recorded as
#: its own line of stage_timings.json (:data:`RAY_START`), not inside that stage's wall time.
RAY_STAGES = ("collect", "features", "train", "tune", "doctor")
RAY_START = "ray_start"

#: stage -> "module:function" taking (cfg, run_dir), run for every requested stage before the first
#: stage starts: checks that need the run folder (config alone is checked earlier, in app.config).
PREFLIGHTS: dict[str, str] = {
    "tune": "app.tune.stage:preflight",
}


def _call(target: str, cfg: DictConfig, run_dir: Path) -> Any:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)(cfg, run_dir)


def _counts(stage: str, result: Any) -> dict[str, Any]:
    """The throughput figures of a stage's result that the report shows."""
    if stage == "collect" and isinstance(result, dict):
        t = result.get("totals", {})
        return {"bars": t.get("bars_fetched"), "requests": t.get("requests"), "rate_limit": t.get("rate_limit")}
    if stage == "features":
        return {"rows": getattr(result, "rows", None)}
    if stage == "train":
        history = getattr(result, "history", None) or []
        gpu = [h["gpu_peak_allocated_mb"] for h in history if h.get("gpu_peak_allocated_mb") is not None]
        return {"samples": sum(int(h.get("train_samples", 0)) for h in history) or None,
                "gpu_peak_mb": max(gpu, default=None)}
    if stage == "tune":
        return {"samples": getattr(result, "samples", None), "gpu_peak_mb": getattr(result, "gpu_peak_mb", None)}
    return {}


def _carry_symbols(cfg: DictConfig, result: Any) -> None:
    """Later stages of this run work on the symbols collection resolved (e.g. from universe=all)."""
    if not isinstance(result, dict) or not result.get("symbols"):
        return
    failed = set(result.get("failed") or ())
    if cfg.data.symbols:  # the user's list and order, less what could not be collected
        ok = [s for s in symbols_of(cfg) if s not in failed]
    else:
        ok = [s for s, o in result["symbols"].items() if o.get("status") != "failed"]
    with open_dict(cfg):
        cfg.data.symbols = ok


def start_ray(cfg: DictConfig, run_dir: Path) -> float | None:
    """Start (or join) Ray and record how long that took; None when this process already runs it."""
    import ray

    from app.machine.memory import PeakTreeMemory
    from app.ray_runtime import init_ray
    from app.report.stage import record_stage

    if ray.is_initialized():
        return None
    started = time.perf_counter()
    with PeakTreeMemory() as memory:
        init_ray(cfg.ray)
    wall = time.perf_counter() - started
    record_stage(run_dir, RAY_START, wall, **memory.figures())
    log.info("Ray started in %.1f s", wall)
    return wall


def run_stages(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Run each requested stage; returns wall seconds per stage that ran. A collection that left
    symbols missing for a transient reason ends the run with exit 3: at once, or with
    ``collect.allow_partial`` after the later stages ran on the rest."""
    from app.data.collect import incomplete_error
    from app.machine.environment import refresh_ray
    from app.machine.memory import PeakTreeMemory
    from app.machine.stage import at_start
    from app.report.stage import record_stage

    timings: dict[str, float] = {}
    incomplete = None
    at_start(cfg, run_dir)
    for stage in stages_of(cfg):
        if stage in PREFLIGHTS:
            _call(PREFLIGHTS[stage], cfg, run_dir)
        if stage not in RUNNERS:  # said up front, so the run's result stays the console's last lines
            log.warning("stage %s is not built yet; skipping it", stage)
    for stage in stages_of(cfg):
        target = RUNNERS.get(stage)
        if target is None:
            continue
        if stage in RAY_STAGES:
            start_ray(cfg, run_dir)
        started = time.perf_counter()
        with PeakTreeMemory() as memory:
            result = _call(target, cfg, run_dir)
        timings[stage] = time.perf_counter() - started
        refresh_ray(run_dir)
        if stage == "collect":
            _carry_symbols(cfg, result)
        if stage not in ("report", "compare", "doctor"):
            record_stage(run_dir, stage, timings[stage], **_counts(stage, result), **memory.figures())
        console.say("%s", stage_line(stage, timings[stage], _counts(stage, result)))
        if stage == "report" and isinstance(result, dict):
            for line in result_lines(result, str(Path(result["run"]["dir"]) / "summary.md")):
                console.say("%s", line)
        if stage == "collect" and (incomplete := incomplete_error(result)) is not None:
            if not cfg.collect.allow_partial or result["totals"]["symbols_ok"] == 0:
                raise incomplete
            log.warning("collect.allow_partial: the later stages run without %d missing symbol(s)",
                        len(result["transient_failures"]))
    if incomplete is not None:
        raise incomplete
    return timings
