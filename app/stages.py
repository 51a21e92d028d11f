"""Runs the stages a config names, in pipeline order, each timed and logged."""
from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path

from omegaconf import DictConfig

from app.config import stages_of

log = logging.getLogger(__name__)

#: stage -> "module:function" taking (cfg, run_dir); stages missing here are not built yet.
RUNNERS: dict[str, str] = {
    "collect": "app.data.collect:run",
}


def run_stages(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Run each requested stage; returns wall seconds per stage that ran."""
    timings: dict[str, float] = {}
    log.info("run folder: %s", run_dir)
    for stage in stages_of(cfg):
        target = RUNNERS.get(stage)
        if target is None:
            log.warning("stage %s is not built yet; skipping it", stage)
            continue
        module, func = target.split(":")
        started = time.perf_counter()
        getattr(importlib.import_module(module), func)(cfg, run_dir)
        timings[stage] = time.perf_counter() - started
        log.info("stage %s done in %.1f s", stage, timings[stage])
    return timings
