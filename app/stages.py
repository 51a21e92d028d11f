"""Runs the stages a config names, in pipeline order, each timed and recorded for the report."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from app import console
from app.config import stages_of
from app.console_text import stage_line
from app.stage_registry import RAY_START, STAGES, stage

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)


def start_ray(cfg: AppConfig, run_dir: Path) -> float | None:
    """Start (or join) Ray and record how long that took; None when this process already runs it."""
    import ray

    from app.machine.memory import PeakTreeMemory
    from app.ray_runtime import init_ray
    from app.report.stage import record_stage

    if ray.is_initialized():
        return None
    started = time.perf_counter()
    with PeakTreeMemory() as memory:
        init_ray(cfg.ray, cfg.storage)
    wall = time.perf_counter() - started
    record_stage(run_dir, RAY_START, wall, **memory.figures())
    log.info("Ray started in %.1f s", wall)
    return wall


def run_stages(cfg: AppConfig, run_dir: Path) -> dict[str, float]:
    """Run each requested stage; returns wall seconds per stage that ran. A stage's ``after`` may
    end the run at once (it raises) or once the later stages ran (it returns the error), as a
    collection that left symbols missing does (exit 3)."""
    from app.machine.environment import refresh_ray
    from app.machine.memory import PeakTreeMemory
    from app.machine.stage import at_start
    from app.report.stage import record_stage

    timings: dict[str, float] = {}
    deferred = None
    at_start(cfg, run_dir)
    named = {name: stage(name) for name in stages_of(cfg)}
    for name, st in named.items():
        if st is not None:
            st.preflight(cfg, run_dir)
        else:  # said up front, so the run's result stays the console's last lines
            log.warning("stage %s is not built yet; skipping it", name)
    for name, st in named.items():
        if st is None:
            continue
        if STAGES[name].uses_ray and st.needs_ray(cfg):
            start_ray(cfg, run_dir)
        started = time.perf_counter()
        with PeakTreeMemory() as memory:
            result = st.run(cfg, run_dir)
        timings[name] = time.perf_counter() - started
        refresh_ray(run_dir)
        counts = st.counts(result)
        if STAGES[name].recorded:
            record_stage(run_dir, name, timings[name], **counts, **memory.figures())
        console.say("%s", stage_line(name, timings[name], counts, STAGES[name].unit))
        deferred = st.after(cfg, run_dir, result) or deferred
    if deferred is not None:
        raise deferred
    return timings
