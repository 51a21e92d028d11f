"""Stage ``features``: the features dataset of the store's bars (:func:`app.features.features.run`).

The dataset lives with the store, not the run folder, so the run folder is not used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from app.stage_registry import BaseStage


class FeaturesStage(BaseStage):
    def run(self, cfg: Any, run_dir: Path) -> Any:
        from app.features.features import run

        return run(cfg)

    def counts(self, result: Any) -> dict[str, Any]:
        return {"rows": getattr(result, "rows", None)}


STAGE = FeaturesStage()
