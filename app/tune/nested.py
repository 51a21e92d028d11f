"""A trial that launches a ``TorchTrainer`` (Ray Train V2 + Tune): for trials with several workers.

``app.train.fit.fit`` runs in the trial with the trial folder as its run folder; a report
callback forwards each epoch's metrics (plus the checkpoint's path and the running best) to Tune.
A restored trial finds its Ray Train run in the trial folder and continues it. With the sweep on a
storage URI the Ray Train run keeps its checkpoints in the trial's folder there instead.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback

from app import storage
from app.train.config import TrainConfig
from app.train.fit import FitData, fit
from app.train.plan import RUN_PREFIX
from app.tune.place import entries, is_dir, read_text
from app.tune.ranking import best_key, best_of, running_best
from app.tune.windows import TrialWindows

log = logging.getLogger(__name__)


class BestMetricReportCallback(TuneReportCallback):
    """Tune's Ray Train callback, adding ``best_<metric>`` (the running best) to each epoch's row."""

    def __init__(self, metric: str, mode: str, best: float | None = None) -> None:
        super().__init__()
        self.metric, self.mode, self.best = metric, mode, best

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        rows = [dict(m) for m in metrics]
        if rows:
            self.best = running_best(self.best, rows[0].get(self.metric), self.mode)
            rows[0][best_key(self.metric)] = self.best
        super().after_report(run_context, rows, checkpoint)


def _earlier_remote_history(checkpoints: str) -> list[dict[str, Any]]:
    """:func:`_earlier_history` for a trial whose Ray Train checkpoints are on a storage URI."""
    fs, root = storage.filesystem(checkpoints)
    runs = [p for p in entries(fs, root) if p.rsplit("/", 1)[-1].startswith(RUN_PREFIX) and is_dir(fs, p)]
    ckpts = [p for p in entries(fs, runs[-1]) if p.rsplit("/", 1)[-1].startswith("epoch_")] if runs else []
    text = read_text(fs, f"{ckpts[-1]}/meta.json") if ckpts else None
    return list(json.loads(text).get("history", [])) if text else []


def _earlier_history(storage: Path) -> list[dict[str, Any]]:
    """Epoch rows of the trial's earlier training run (from its newest checkpoint), if any."""
    runs = sorted(p for p in storage.glob(f"{RUN_PREFIX}*") if p.is_dir())
    ckpts = sorted(runs[-1].glob("epoch_*")) if runs else []
    if not ckpts or not (ckpts[-1] / "meta.json").exists():
        return []
    return list(json.loads((ckpts[-1] / "meta.json").read_text()).get("history", []))


def train_with_trainer(model_cfg: dict, cfg: TrainConfig, data: TrialWindows, metric: str, mode: str,
                       experiment_uri: str | None = None) -> None:  # fmt: skip
    """Train through ``fit``; with the sweep on a storage URI its checkpoints go to the trial's place there."""
    trial_dir = Path(tune.get_context().get_trial_dir())
    remote = storage.join(experiment_uri, trial_dir.name, "checkpoints") if experiment_uri else None
    earlier = _earlier_remote_history(remote) if remote else _earlier_history(trial_dir / "checkpoints")
    cfg = dataclasses.replace(cfg, resume=bool(earlier))
    callback = BestMetricReportCallback(metric, mode, best_of(earlier, metric, mode))
    fit(model_cfg, cfg, FitData(data.train, data.val, data.n_features, data.extra_meta), trial_dir,
        callbacks=[callback], write_predictions=False, checkpoints=remote)  # fmt: skip
