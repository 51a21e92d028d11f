"""A restored trial keeps the epoch rows the killed driver recorded.

Tune's driver writes each trial's ``result.json`` and ``progress.csv`` into a staging folder of
its own session and copies that folder over the trial's folder (local or on a storage URI) every
few seconds. A resumed sweep starts with an empty staging folder and brings a trial's records
back into it only when the saved state has a checkpoint for the trial. The saved state can be
older than the trial's folder: a trial that reported (and checkpointed) epochs after the last
save, then continues from its folder's newer checkpoint (``app.tune.restore``), would have its
records replaced by the epochs after the restart, losing the ones before.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
from ray.tune import Callback

from app.tune.place import RESULT_FILE

log = logging.getLogger(__name__)

#: What Tune's logger callbacks append to per trial.
RECORD_FILES = (RESULT_FILE, "progress.csv")


def bring_back_records(trial: Any) -> list[str]:
    """Copy the trial's records from its folder into the driver's staging folder when the staging
    folder has none yet (the first start of a restored trial); returns the files copied."""
    fs = trial.storage.storage_filesystem
    copied = []
    for name in RECORD_FILES:
        local, remote = Path(trial.local_path, name), f"{trial.path}/{name}"
        if local.exists() or fs.get_file_info(remote).type != pafs.FileType.File:
            continue
        local.parent.mkdir(parents=True, exist_ok=True)
        pafs.copy_files(remote, str(local), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
        copied.append(name)
    return copied


class KeepTrialRecords(Callback):
    """Runs before Tune's logger callbacks (Tune appends them after the sweep's own), so they append
    to the records a restored trial already had."""

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        try:
            copied = bring_back_records(trial)
        except (OSError, RuntimeError) as exc:  # a new trial has no folder name yet; storage hiccups
            log.warning("could not bring back trial %s's records: %s", trial.trial_id, exc)
            return
        if copied:
            log.info("trial %s continues its records (%s)", trial.trial_id, ", ".join(copied))
