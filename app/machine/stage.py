"""``stage=doctor`` and the environment check that starts every other run."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import stages_of
from app.errors import ServiceError
from app.machine.environment import check, write
from app.machine.needs import missing, run_stages_of
from app.stage_registry import BaseStage

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)


def at_start(cfg: AppConfig, run_dir: Path) -> None:
    """The check every run begins with, without starting Ray; ``doctor`` runs its own, with Ray."""
    if "doctor" not in stages_of(cfg):
        check(cfg, run_dir)


def run_doctor(cfg: AppConfig, run_dir: Path) -> dict[str, Any]:
    """Start or join Ray, check the environment, and fail (exit 1) listing what the run lacks."""
    from app.ray_runtime import init_ray

    init_ray(cfg.ray, cfg.storage)
    env = check(cfg, run_dir)
    gaps = missing(env, cfg)
    env["doctor"] = {"stages": run_stages_of(cfg), "missing": gaps}
    write(run_dir, env)
    if gaps:
        raise ServiceError(f"doctor: this machine lacks {'; '.join(gaps)}")
    log.info("doctor: nothing the configured stages (%s) need is missing", ", ".join(env["doctor"]["stages"]))
    return env


class DoctorStage(BaseStage):
    def run(self, cfg: AppConfig, run_dir: Path) -> dict[str, Any]:
        return run_doctor(cfg, run_dir)


DOCTOR = DoctorStage()
