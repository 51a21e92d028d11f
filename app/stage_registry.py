"""The stages the pipeline knows, one entry each, in the order they run.

A stage is an object with the :class:`Stage` methods, living in its own package's module and
named here by ``"module:attribute"`` (imported only when the stage runs, so the config check and
the report stay light). Adding a stage is one :class:`StageEntry` below plus its module; the
runner (:mod:`app.stages`), the config check (:func:`app.config.stages_of`) and the report's stage
table all read this list.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.errors import AppError


class Stage(Protocol):
    """What the runner needs of a stage."""

    def preflight(self, cfg: Any, run_dir: Path) -> None:
        """Checks that need the run folder, run for every requested stage before the first starts."""

    def needs_ray(self, cfg: Any) -> bool:
        """Whether this run of a stage registered ``uses_ray`` needs Ray (a collection without actors does not)."""

    def run(self, cfg: Any, run_dir: Path) -> Any:
        """Do the stage's work; the result goes to :meth:`counts` and :meth:`after`."""

    def counts(self, result: Any) -> dict[str, Any]:
        """The throughput figures of ``result`` that the console line and the report show."""

    def after(self, cfg: Any, run_dir: Path, result: Any) -> AppError | None:
        """Once the stage's line is out: carry what later stages need into ``cfg``, say results, and
        return an error that ends the run after the later stages (or raise to end it now)."""


class BaseStage:
    """A stage with nothing to check first, no figures and nothing to carry on: override what differs."""

    def preflight(self, cfg: Any, run_dir: Path) -> None:
        return None

    def needs_ray(self, cfg: Any) -> bool:
        return True

    def run(self, cfg: Any, run_dir: Path) -> Any:
        raise NotImplementedError

    def counts(self, result: Any) -> dict[str, Any]:
        return {}

    def after(self, cfg: Any, run_dir: Path, result: Any) -> AppError | None:
        return None


@dataclass(frozen=True)
class StageEntry:
    name: str
    target: str | None  # "module:attribute" of a Stage; None = named in configs but not built yet
    in_all: bool = False  # part of stage=all
    recorded: bool = True  # its wall time and figures go to stage_timings.json for the report
    uses_ray: bool = False  # Ray is started before it (if its needs_ray says so), the start-up recorded apart
    unit: str | None = None  # the figure of its counts its console line gives per second ("bars", "rows", ...)


#: The line of stage_timings.json that holds Ray's start-up, not inside the first stage using Ray.
RAY_START = "ray_start"


#: Run order. ``doctor`` (the environment check alone) runs first; ``tune`` replaces ``train`` in the
#: sweep experiments; ``predict`` (run_dir=...) and ``compare`` (runs=[...]) only run when named.
STAGES: dict[str, StageEntry] = {e.name: e for e in (
    StageEntry("doctor", "app.machine.stage:DOCTOR", recorded=False, uses_ray=True),
    StageEntry("collect", "app.collect.collect_stage:STAGE", in_all=True, uses_ray=True, unit="bars"),
    StageEntry("features", "app.features.features_stage:STAGE", in_all=True, uses_ray=True, unit="rows"),
    StageEntry("train", "app.train.stage:STAGE", in_all=True, uses_ray=True, unit="samples"),
    StageEntry("tune", "app.tune.stage:STAGE", uses_ray=True, unit="samples"),
    StageEntry("predict", "app.predict.stage:STAGE"),
    StageEntry("evaluate", "app.evaluate.stage:STAGE", in_all=True),
    StageEntry("report", "app.report.stage:REPORT", in_all=True, recorded=False),
    StageEntry("realtime", None, in_all=True),
    StageEntry("compare", "app.report.stage:COMPARE", recorded=False),
)}


def stage_names() -> tuple[str, ...]:
    return tuple(STAGES)


def stage(name: str) -> Stage | None:
    """The stage object of ``name``; None for one that is not built yet."""
    target = STAGES[name].target
    if target is None:
        return None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
