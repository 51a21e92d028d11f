"""Which checkpoint a restored direct trial continues from, when the sweep's saved state lags its folder."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pafs

from app.models.lstm import LSTMModel
from app.train.checkpoint import write_checkpoint
from app.train.loop import EarlyStopping
from app.tune.restore import folder_checkpoints, recorded_epochs, saved_state


def checkpoint(trial_dir: Path, index: int, epoch: int) -> Path:
    folder = trial_dir / f"checkpoint_{index:06d}"
    write_checkpoint(folder, model=LSTMModel(3, hidden_size=4, num_layers=1), optimization={},
                     early=EarlyStopping("min", 0), epoch=epoch, rng=[], meta={"history": [{"epoch": epoch}]})
    return folder


def record(trial_dir: Path, epochs: list[int]) -> None:
    """The driver's result.json: one line per epoch it received."""
    (trial_dir / "result.json").write_text("".join(json.dumps({"epoch": e, "trial_id": "t"}) + "\n" for e in epochs))


LOCAL = pafs.LocalFileSystem()


def test_continues_from_the_newest_checkpoint_the_driver_recorded(tmp_path):
    for i, epoch in enumerate((1, 2, 3)):
        checkpoint(tmp_path, i, epoch)
    record(tmp_path, [1, 2])  # epoch 3 was checkpointed but its report never reached the driver
    assert recorded_epochs(LOCAL, str(tmp_path)) == 2
    state = saved_state(LOCAL, str(tmp_path))
    assert state.epoch == 2 and state.meta["history"] == [{"epoch": 2}]
    record(tmp_path, [1, 2, 3])
    assert saved_state(LOCAL, str(tmp_path)).epoch == 3


def test_a_checkpoint_cut_short_by_the_kill_is_skipped(tmp_path):
    checkpoint(tmp_path, 0, 1)
    broken = checkpoint(tmp_path, 1, 2)
    (broken / "train_state.pt").write_bytes((broken / "train_state.pt").read_bytes()[:40])  # truncated
    half = tmp_path / "checkpoint_000002"
    half.mkdir()  # created, nothing written yet
    record(tmp_path, [1, 2, 3])
    with (tmp_path / "result.json").open("a") as f:
        f.write('{"epoch": 4, "tri')  # the driver was killed while writing
    assert recorded_epochs(LOCAL, str(tmp_path)) == 3
    assert saved_state(LOCAL, str(tmp_path)).epoch == 1


def test_nothing_to_continue_from(tmp_path):
    assert recorded_epochs(LOCAL, str(tmp_path / "none")) == 0 and saved_state(LOCAL, str(tmp_path / "none")) is None
    checkpoint(tmp_path, 0, 1)  # a checkpoint whose report the driver never got
    assert saved_state(LOCAL, str(tmp_path)) is None


def test_the_folder_is_read_through_the_storage_filesystem(tmp_path):
    """A sweep on a storage URI: the checkpoint is fetched from the bucket, not read from a local path."""
    bucket = tmp_path / "bucket"
    folder = bucket / "exp" / "trial_t"
    folder.mkdir(parents=True)
    checkpoint(folder, 0, 1), checkpoint(folder, 1, 2)
    record(folder, [1, 2])
    fs = pafs.SubTreeFileSystem(str(bucket), LOCAL)
    assert [e for e, _ in folder_checkpoints(fs, "exp/trial_t")] == [2, 1]
    assert saved_state(fs, "exp/trial_t").epoch == 2


def test_a_real_trial_finds_its_checkpoints_also_on_a_reused_actor(ray_session, tmp_path):
    """Each trial (the second and third on the first one's actor) sees the checkpoints it reported in
    the folder ``trial_folder`` names, which is where a restored trial looks."""
    import tempfile

    from ray import tune

    def trainable(config):  # refers to nothing of this module: Ray's workers cannot import it
        from app.tune.restore import folder_checkpoints, trial_folder

        seen = []
        for epoch in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                Path(tmp, "meta.json").write_text(json.dumps({"epoch": epoch}))
                tune.report({"epoch": epoch, "seen": list(seen)}, checkpoint=tune.Checkpoint.from_directory(tmp))
            seen = [e for e, _ in folder_checkpoints(*trial_folder())]

        tune.report({"epoch": 3, "seen": seen})

    tuner = tune.Tuner(
        trainable, param_space={"i": tune.grid_search([0, 1, 2])},
        tune_config=tune.TuneConfig(max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0),
    )  # fmt: skip
    results = tuner.fit()
    assert not results.errors
    assert [r.metrics["seen"] for r in results] == [[2, 1]] * 3
    assert len({r.metrics["pid"] for r in results}) == 1  # one actor served all three


class _Storage:
    def __init__(self, fs) -> None:
        self.storage_filesystem = fs


class _Trial:
    """What ``bring_back_records`` reads of a Tune trial: its storage, staging and folder paths."""

    def __init__(self, fs, staging: Path, folder: str) -> None:
        self.storage, self.local_path, self.path, self.trial_id = _Storage(fs), str(staging), folder, "t"


def test_a_restored_trial_gets_its_records_back_before_tune_appends_to_them(tmp_path):
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
    assert bring_back_records(trial) == [] and recorded_epochs(LOCAL, str(staging)) == 3

    new = _Trial(fs, tmp_path / "session" / "driver_artifacts" / "trial_n", "exp/trial_n")
    assert bring_back_records(new) == [] and not (tmp_path / "session" / "driver_artifacts" / "trial_n").exists()
