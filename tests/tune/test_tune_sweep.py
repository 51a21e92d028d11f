"""One small sweep (direct trials, OptunaSearch + ASHA) checked from every side, and its best config re-run.

The sweep: 6 trials of at most 4 epochs on a 6-symbol simulated market; ASHA with grace 1 and
reduction factor 2 has rungs at epochs 1 and 2, so some trials must stop there.
"""
from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest

from app.tune.overrides import OVERRIDES_FILE, read_overrides
from tests.conftest import compose_config
from tests.tune.conftest import base_overrides, result_rows, write_hydra_overrides

MAX_T = 4
SAMPLES = 6
SPACE = {
    "lr": {"path": "train.lr", "type": "loguniform", "low": 1e-4, "high": 3e-2},
    "hidden": {"path": "model.hidden_size", "type": "choice", "values": [8, 16, 32]},
    "seq_len": {"path": "windows.seq_len", "type": "choice", "values": [5, 10]},
}
TRAIN = ["train.batch_size=128", "train.early_stopping_patience=0", f"train.epochs={MAX_T}"]
PREDICTION_COLUMNS = {"symbol", "ts", "prediction", "label", "split", "pred_zero", "pred_ridge", "pred_oracle"}


@pytest.fixture(scope="module")
def sweep(make_cfg, features_store, tmp_path_factory):
    from app.tune.stage import run

    run_dir = tmp_path_factory.mktemp("sweep") / "run"
    overrides = [*base_overrides(features_store), *TRAIN]
    write_hydra_overrides(run_dir, overrides)
    cfg = make_cfg(*TRAIN, num_samples=SAMPLES, search_space=SPACE, n_startup_trials=2, grace_period=1,
                   reduction_factor=2, max_t=MAX_T)  # fmt: skip
    result = run(cfg, run_dir)
    frame = pd.read_parquet(run_dir / "tune_results.parquet")
    return {"cfg": cfg, "run_dir": run_dir, "result": result, "frame": frame}


@pytest.mark.slow
def test_optuna_proposed_a_different_config_for_every_trial(sweep):
    frame = sweep["frame"]
    assert len(frame) == SAMPLES and frame["trial_id"].is_unique
    assert len({(round(r.lr, 12), r.hidden, r.seq_len) for r in frame.itertuples()}) == SAMPLES
    assert frame["lr"].between(1e-4, 3e-2).all() and set(frame["hidden"]) <= {8, 16, 32}


@pytest.mark.slow
def test_asha_stopped_bad_trials_at_its_rungs_before_max_t(sweep):
    frame = sweep["frame"]
    stopped = frame[frame["stop_reason"] == "stopped"]
    assert len(stopped) >= 1 and stopped["stopped_early"].all()
    assert set(stopped["epochs_run"]) <= {1, 2}  # rungs: grace 1, then 1 x reduction factor 2
    done = frame[frame["stop_reason"] == "completed"]
    assert len(done) >= 1 and (done["epochs_run"] == MAX_T).all()
    # The epochs each trial reported to Tune (its result.json) match the table.
    for row in frame.itertuples():
        assert [r["epoch"] for r in result_rows(sweep["run_dir"] / "tune" / "sweep" / f"trial_{row.trial_id}")] == \
            list(range(1, row.epochs_run + 1))
    # ASHA stops a trial only below its rung's cutoff: some other trial did better at that epoch.
    for row in stopped.itertuples():
        exp = sweep["run_dir"] / "tune" / "sweep"
        others = [r["val_loss"] for t in frame["trial_id"] if t != row.trial_id
                  for r in result_rows(exp / f"trial_{t}") if r["epoch"] == row.epochs_run]
        assert min(others) < row.last_val_loss


@pytest.mark.slow
def test_results_and_best_trial(sweep):
    frame, run_dir, result = sweep["frame"], sweep["run_dir"], sweep["result"]
    assert frame["best_val_loss"].is_monotonic_increasing  # best first
    assert result.best_trial == frame["trial_id"].iloc[0]
    assert result.best_value == pytest.approx(frame["best_val_loss"].min())
    csv = pd.read_csv(run_dir / "tune_results.csv")
    assert list(csv["trial_id"].astype(str)) == list(frame["trial_id"])
    assert (frame["wall_seconds"] > frame["epoch_seconds"]).all()  # the table measures per-trial overhead
    summary = json.loads((run_dir / "tune_summary.json").read_text())
    assert summary["best_trial"] == result.best_trial and summary["n_trials"] == SAMPLES
    assert summary["trial_epochs"] == int(frame["epochs_run"].sum())


@pytest.mark.slow
def test_best_checkpoint_is_re_evaluated_on_the_test_split(sweep):
    run_dir, frame = sweep["run_dir"], sweep["frame"]
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    assert PREDICTION_COLUMNS <= set(preds.columns)
    assert set(preds["split"]) == {"val", "test"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    best = frame.iloc[0]
    assert metrics["model"]["hidden_size"] == best["hidden"]
    assert metrics["train"]["lr"] == pytest.approx(best["lr"])
    assert json.loads((run_dir / "split.json").read_text())["seq_len"] == best["seq_len"]
    assert metrics["best"]["val_loss"] == pytest.approx(best["best_val_loss"])
    assert metrics["best_epoch"] == best["best_epoch"]
    assert set(metrics["test"]) >= {"model", "zero", "ridge", "oracle"}
    bundle = json.loads((run_dir / "model" / "bundle.json").read_text())  # the same writer as the train stage's
    assert bundle["seq_len"] == best["seq_len"] and bundle["model"]["hidden_size"] == best["hidden"]
    # The re-evaluation scores the same checkpoint: its validation loss is the trial's best one.
    val = preds[preds["split"] == "val"]
    mse = float(np.mean((val["prediction"].astype(float) - val["label"].astype(float)) ** 2))
    assert mse == pytest.approx(best["best_val_loss"], rel=1e-3)


@pytest.mark.slow
def test_evaluate_and_report_run_unchanged_on_the_sweep_folder(sweep):
    from app.evaluate.stage import run as evaluate
    from app.report.stage import run as report

    summary = evaluate(sweep["cfg"], sweep["run_dir"])
    assert "model" in summary["models"]
    built = report(sweep["cfg"], sweep["run_dir"])
    assert built["training"]["best_epoch"] == sweep["frame"].iloc[0]["best_epoch"]
    best = sweep["frame"].iloc[0]
    assert built["sweep"]["n_trials"] == len(sweep["frame"]) and built["sweep"]["best_trial"] == best["trial_id"]
    assert set(built["sweep"]["best_values"]) == set(SPACE)
    text = (sweep["run_dir"] / "summary.md").read_text()
    assert "## Sweep" in text and "](tune_curves.png)" in text and best["trial_id"] in text


@pytest.mark.slow
def test_sweep_plots_and_tensorboard_logs(sweep):
    from tensorboardX.proto.event_pb2 import Event

    run_dir = sweep["run_dir"]
    for name in ("tune_curves.png", "tune_importance.png", "tune_values.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for trial_id in sweep["frame"]["trial_id"]:
        (events,) = (run_dir / "tune" / "sweep" / f"trial_{trial_id}").glob("events.out.tfevents.*")
        data, tags, i = events.read_bytes(), set(), 0
        while i < len(data):  # TFRecord: length, crc, payload, crc
            (n,) = struct.unpack("<Q", data[i : i + 8])
            event = Event.FromString(data[i + 12 : i + 12 + n])
            tags |= {v.tag for v in event.summary.value}
            i += 16 + n
        assert {"ray/tune/val_loss", "ray/tune/train_loss", "ray/tune/best_val_loss"} <= tags


@pytest.mark.slow
def test_best_config_file_re_runs_training(sweep, tmp_path):
    from app.train.stage import run as train

    lines = read_overrides(sweep["run_dir"] / OVERRIDES_FILE)
    best = sweep["frame"].iloc[0]
    assert f"model.hidden_size={best['hidden']}" in lines and f"windows.seq_len={best['seq_len']}" in lines
    cfg = compose_config(*lines, "train.epochs=1")  # the file as it is, one epoch to keep the test short
    assert cfg.train.lr == pytest.approx(best["lr"]) and "train" in cfg.stage and "tune" not in cfg.stage
    result = train(cfg, tmp_path)
    metrics = json.loads(result.metrics_path.read_text())
    assert metrics["model"]["hidden_size"] == best["hidden"]
    assert json.loads((tmp_path / "split.json").read_text())["seq_len"] == best["seq_len"]
    assert len(result.history) == 1


@pytest.mark.slow
def test_trainer_trials_run_a_torch_trainer_each_and_free_its_workers(make_cfg, tmp_path, ray_session):
    """Ray's Train V2 + Tune pattern: each trial's TorchTrainer reports through the callback."""
    from ray.util.state import list_placement_groups

    from app.tune.stage import run

    cfg = make_cfg(*TRAIN, num_samples=2, trial_mode="trainer", search_space=SPACE, n_startup_trials=2,
                   grace_period=1, reduction_factor=2, max_t=2)  # fmt: skip
    result = run(cfg, tmp_path)
    frame = pd.read_parquet(result.results_path)
    assert len(frame) == 2 and (frame["epochs_run"] >= 1).all()
    assert json.loads((tmp_path / "tune_summary.json").read_text())["trial_mode"] == "trainer"
    for trial_id in frame["trial_id"]:
        rows = result_rows(tmp_path / "tune" / "sweep" / f"trial_{trial_id}")
        assert all("checkpoint_path" in r and r["best_val_loss"] <= r["val_loss"] for r in rows)
    assert (tmp_path / "predictions.parquet").exists()
    job = ray_session.get_runtime_context().get_job_id()
    live = list_placement_groups(address=ray_session.get_runtime_context().gcs_address,
                                 filters=[("state", "=", "CREATED")], detail=True)  # fmt: skip
    assert not [g for g in live if g.creator_job_id == job]  # no worker group outlives its trial
