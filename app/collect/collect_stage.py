"""Stage ``collect``: bars from the configured source into the store (:func:`app.collect.collect.run`).

After it, the later stages of the run work on the symbols it resolved, and a collection that left
symbols missing for a transient reason ends the run with exit 3: at once, or with
``collect.allow_partial`` once the later stages ran on the rest.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.contracts import normalize_symbols
from app.errors import AppError
from app.stage_registry import BaseStage

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)


def carry_symbols(cfg: AppConfig, manifest: Any) -> None:
    """Later stages of this run work on the symbols collection resolved (e.g. from universe=all)."""
    if not isinstance(manifest, dict) or not manifest.get("symbols"):
        return
    failed = set(manifest.get("failed") or ())
    if cfg.data.symbols:  # the user's list and order, less what could not be collected
        ok = [s for s in normalize_symbols(cfg.data.symbols) if s not in failed]
    else:
        ok = [s for s, o in manifest["symbols"].items() if o.get("status") != "failed"]
    cfg.data.symbols = ok


class CollectStage(BaseStage):
    def preflight(self, cfg: AppConfig, run_dir: Path) -> None:
        """Real KIS without credentials fails here, before Ray or anything else starts."""
        if cfg.data.source == "kis":
            from app.kis.credentials import Credentials

            Credentials.from_env()

    def needs_ray(self, cfg: AppConfig) -> bool:
        """Only collection actors need Ray; a file source never uses them."""
        from app.collect.collect import uses_actors

        return cfg.data.source != "file" and uses_actors(cfg, len(cfg.data.symbols) or None)

    def run(self, cfg: AppConfig, run_dir: Path) -> dict:
        from app.collect.collect import run

        return run(cfg, run_dir)

    def counts(self, result: Any) -> dict[str, Any]:
        if not isinstance(result, dict):
            return {}
        t = result.get("totals", {})
        return {"bars": t.get("bars_fetched"), "requests": t.get("requests"), "rate_limit": t.get("rate_limit")}

    def after(self, cfg: AppConfig, run_dir: Path, result: Any) -> AppError | None:
        from app.collect.collect import incomplete_error

        carry_symbols(cfg, result)
        incomplete = incomplete_error(result)
        if incomplete is None:
            return None
        if not cfg.collect.allow_partial or result["totals"]["symbols_ok"] == 0:
            raise incomplete
        log.warning("collect.allow_partial: the later stages run without %d missing symbol(s)",
                    len(result["transient_failures"]))
        return incomplete


STAGE = CollectStage()
