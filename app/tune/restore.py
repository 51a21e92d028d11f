"""Where a restored ``direct`` trial continues: its newest checkpoint the sweep has a result for.

Tune saves the sweep's state (which checkpoint each trial has, which trials are done) every few
seconds, not after every result, and it registers a reported checkpoint one actor call after the
result itself: a state saved in between has the epoch's result but the previous checkpoint. A
driver killed after such a save, or between a report and the next save, restores the trial from an
older checkpoint, or from none, and the trial would train (and report) those epochs again. The
trial's folder in the sweep's storage is more current: the trial wrote every checkpoint there
before reporting it, and the driver copied its ``result.json`` (every epoch it received) there with
each state it saved. A restored trial continues from the newest complete checkpoint whose epoch the
driver recorded, so each epoch is reported exactly once.

The folder is read through the storage filesystem (a local path or a storage URI), never through
``get_trial_dir()``: that is the driver's staging folder (no checkpoints), or an empty working
folder when Tune reuses the actor of an earlier trial.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.fs as pafs
from ray import tune

from app.models.factory import META_FILE
from app.train.checkpoint import TrainingState, read_checkpoint
from app.tune.place import RESULT_FILE, parse_results, read_text

log = logging.getLogger(__name__)


def recorded_epochs(fs: pafs.FileSystem, trial_path: str) -> int:
    """The last epoch the driver recorded in the trial folder's ``result.json`` (0 if none)."""
    rows = parse_results(read_text(fs, f"{trial_path}/{RESULT_FILE}") or "")
    return max((int(r.get("epoch") or 0) for r in rows), default=0)


def _epoch_of(fs: pafs.FileSystem, folder: str) -> int | None:
    try:
        return int(json.loads(read_text(fs, f"{folder}/{META_FILE}") or "")["epoch"])
    except (ValueError, KeyError, TypeError):
        return None  # written half-way when the trial was killed


def folder_checkpoints(fs: pafs.FileSystem, trial_path: str) -> list[tuple[int, str]]:
    """(epoch, path) of every checkpoint in the trial folder whose metadata is complete, newest first."""
    listing = fs.get_file_info(pafs.FileSelector(trial_path, allow_not_found=True))  # one listing, types included
    folders = [i.path for i in listing if i.type == pafs.FileType.Directory and i.base_name.startswith("checkpoint_")]
    return sorted(((e, p) for p in folders if (e := _epoch_of(fs, p)) is not None), reverse=True)


def saved_state(fs: pafs.FileSystem, trial_path: str) -> TrainingState | None:
    """The newest complete checkpoint in the trial folder with a recorded epoch."""
    limit = recorded_epochs(fs, trial_path)
    for epoch, path in folder_checkpoints(fs, trial_path):
        if epoch > limit:
            continue  # its report never reached the driver: the epoch is trained and reported again
        try:
            with tune.Checkpoint(path, filesystem=fs).as_directory() as folder:
                return read_checkpoint(Path(folder))
        except Exception as exc:  # a truncated model or training state: try an older one
            log.warning("skipping unreadable checkpoint %s: %s", path, exc)
    return None


def trial_folder() -> tuple[pafs.FileSystem, str]:
    """The running trial's folder in the sweep's storage, where its checkpoints are."""
    storage = tune.get_context().get_storage()
    return storage.storage_filesystem, storage.trial_fs_path


def restored_state() -> TrainingState | None:
    """What this trial continues from: Tune's checkpoint or a newer one from its folder, or nothing."""
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = read_checkpoint(Path(folder))
    try:
        saved = saved_state(*trial_folder())
    except OSError as exc:  # storage unreachable right now: Tune's checkpoint is still a valid start
        log.warning("could not read the trial's folder: %s", exc)
        saved = None
    if saved is not None and (state is None or saved.epoch > state.epoch):
        log.info("trial continues from its folder's epoch-%d checkpoint (the sweep's state had %s)", saved.epoch,
                 state.epoch if state else "none")  # fmt: skip
        return saved
    return state
