"""Sources ``sim`` and ``kis``: bars over the KIS protocol, collected by :func:`app.collect.collect.collect_api`."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from app.collect.sources import ApiSource, check_sim, open_kis, open_sim

if TYPE_CHECKING:
    from app.config import AppConfig


class ApiBarSource:
    def __init__(self, opener: Callable[[AppConfig], AbstractContextManager[ApiSource]],
                 checker: Callable[[AppConfig], None] | None = None) -> None:
        self.opener, self.checker = opener, checker

    def check(self, cfg: AppConfig) -> None:
        if self.checker is not None:
            self.checker(cfg)

    def collect(self, cfg: AppConfig, run_dir: Path, store_root: str) -> dict:
        from app.collect.collect import collect_api

        with self.opener(cfg) as api:
            return collect_api(cfg, api, store_root)


SIM = ApiBarSource(open_sim, check_sim)  # data.sim is checked even under auto, which may pick the simulator
KIS = ApiBarSource(open_kis)
