"""Which checkpoint a restored direct trial continues from, when the sweep's saved state lags its folder."""
from __future__ import annotations

import json
from pathlib import Path

from app.models.lstm import LSTMModel
from app.train.checkpoint import write_checkpoint
from app.train.loop import EarlyStopping
from app.tune.restore import recorded_epochs, saved_state


def checkpoint(trial_dir: Path, index: int, epoch: int) -> Path:
    folder = trial_dir / f"checkpoint_{index:06d}"
    write_checkpoint(folder, model=LSTMModel(3, hidden_size=4, num_layers=1), optimization={},
                     early=EarlyStopping("min", 0), epoch=epoch, rng=[], meta={"history": [{"epoch": epoch}]})
    return folder


def record(trial_dir: Path, epochs: list[int]) -> None:
    """The driver's result.json: one line per epoch it received."""
    (trial_dir / "result.json").write_text("".join(json.dumps({"epoch": e, "trial_id": "t"}) + "\n" for e in epochs))


def test_continues_from_the_newest_checkpoint_the_driver_recorded(tmp_path):
    for i, epoch in enumerate((1, 2, 3)):
        checkpoint(tmp_path, i, epoch)
    record(tmp_path, [1, 2])  # epoch 3 was checkpointed but its report never reached the driver
    assert recorded_epochs(tmp_path) == 2
    state = saved_state(tmp_path)
    assert state.epoch == 2 and state.meta["history"] == [{"epoch": 2}]
    record(tmp_path, [1, 2, 3])
    assert saved_state(tmp_path).epoch == 3


def test_a_checkpoint_cut_short_by_the_kill_is_skipped(tmp_path):
    checkpoint(tmp_path, 0, 1)
    broken = checkpoint(tmp_path, 1, 2)
    (broken / "train_state.pt").write_bytes((broken / "train_state.pt").read_bytes()[:40])  # truncated
    half = tmp_path / "checkpoint_000002"
    half.mkdir()  # created, nothing written yet
    record(tmp_path, [1, 2, 3])
    assert saved_state(tmp_path).epoch == 1


def test_nothing_to_continue_from(tmp_path):
    assert recorded_epochs(tmp_path) == 0 and saved_state(tmp_path) is None
    checkpoint(tmp_path, 0, 1)  # a checkpoint whose report the driver never got
    assert saved_state(tmp_path) is None


class _Storage:
    def __init__(self, fs) -> None:
        self.storage_filesystem = fs


class _Trial:
    """What ``bring_back_records`` reads of a Tune trial: its storage, staging and folder paths."""

    def __init__(self, fs, staging: Path, folder: str) -> None:
        self.storage, self.local_path, self.path, self.trial_id = _Storage(fs), str(staging), folder, "t"


def test_a_restored_trial_gets_its_records_back_before_tune_appends_to_them(tmp_path):
    import pyarrow.fs as pafs

    from app.tune.records import bring_back_records

    bucket = tmp_path / "bucket"  # the sweep's storage, seen through a filesystem like a storage URI's
    (bucket / "exp" / "trial_t").mkdir(parents=True)
    record(bucket / "exp" / "trial_t", [1, 2])
    (bucket / "exp" / "trial_t" / "progress.csv").write_text("epoch\n1\n2\n")
    fs = pafs.SubTreeFileSystem(str(bucket), pafs.LocalFileSystem())
    staging = tmp_path / "session" / "driver_artifacts" / "trial_t"

    trial = _Trial(fs, staging, "exp/trial_t")
    assert bring_back_records(trial) == ["result.json", "progress.csv"]
    assert (staging / "result.json").read_text() == (bucket / "exp" / "trial_t" / "result.json").read_text()
    assert (staging / "progress.csv").read_text() == "epoch\n1\n2\n"

    record(staging, [1, 2, 3])  # this driver has written since: its own file is not replaced
    assert bring_back_records(trial) == [] and recorded_epochs(staging) == 3

    new = _Trial(fs, tmp_path / "session" / "driver_artifacts" / "trial_n", "exp/trial_n")
    assert bring_back_records(new) == [] and not (tmp_path / "session" / "driver_artifacts" / "trial_n").exists()
