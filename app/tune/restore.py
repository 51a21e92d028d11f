"""Where a restored ``direct`` trial continues: its newest checkpoint the sweep has a result for.

Tune saves the sweep's state (which checkpoint each trial has, which trials are done) every few
seconds, not after every result. A driver killed between a trial's report and the next save
restores the trial from an older checkpoint, or from none, and the trial would train (and
report) those epochs again. The trial's folder is more current: it holds every checkpoint the
trial wrote and the driver's ``result.json`` with every epoch it received. A restored trial
continues from the newest complete checkpoint whose epoch the driver recorded, so each epoch is
reported exactly once.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from ray import tune

from app.models.factory import META_FILE
from app.train.checkpoint import TrainingState, read_checkpoint

log = logging.getLogger(__name__)


def recorded_epochs(trial_dir: Path) -> int:
    """The last epoch the driver wrote to the trial's ``result.json`` (0 if none)."""
    path = trial_dir / "result.json"
    if not path.exists():
        return 0
    epochs = [json.loads(line).get("epoch") or 0 for line in path.read_text().splitlines() if line.strip()]
    return int(max(epochs, default=0))


def _epoch_of(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / META_FILE).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # written half-way when the trial was killed


def saved_state(trial_dir: Path) -> TrainingState | None:
    """The newest complete checkpoint in ``trial_dir`` with a recorded epoch."""
    limit = recorded_epochs(trial_dir)
    found = [(e, f) for f in trial_dir.glob("checkpoint_*") if (e := _epoch_of(f)) is not None and e <= limit]
    for epoch, folder in sorted(found, reverse=True):
        try:
            return read_checkpoint(folder)
        except Exception as exc:  # a truncated model or training state: try an older one
            log.warning("skipping unreadable checkpoint %s: %s", folder, exc)
    return None


def restored_state() -> TrainingState | None:
    """What this trial continues from: Tune's checkpoint or a newer one from its folder, or nothing."""
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = read_checkpoint(Path(folder))
    trial_dir = Path(tune.get_context().get_trial_dir())
    saved = saved_state(trial_dir) if trial_dir.is_dir() else None
    if saved is not None and (state is None or saved.epoch > state.epoch):
        log.info("trial continues from its folder's epoch-%d checkpoint (the sweep's state had %s)", saved.epoch,
                 state.epoch if state else "none")  # fmt: skip
        return saved
    return state
