"""``fit`` on Ray Train with 2 DDP workers: a crash, a resume, a worker restore, and the outputs.

Each ``fit`` costs ~15 s of Ray Train start-up here, so one module fixture makes two runs on one
run folder and the tests below check them from every side:

* run A (``max_failures=0``) loses its rank-0 worker during epoch 2 and fails;
* run B (``resume=true``) continues A from its epoch-1 checkpoint, loses rank 0 again during its
  second epoch, is restored by ``FailureConfig`` from its last checkpoint, and finishes epoch 3.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import ray.train
import torch

from app.errors import ConfigError, DataError
from app.models.factory import load_model, read_meta
from app.train.amp import cpu_has_bf16
from app.train.config import TrainConfig
from app.train.fit import FitData, fit, worker_count
from app.train.predict import predict
from train_testutil import FLAKY_TARGET, N_FEATURES, to_dataset, windows

N_SYMBOLS = 40
BATCH = 50
TRAIN_ROWS = 50 * N_SYMBOLS  # 1000 rows per worker: 20 steps per epoch
CFG = dict(num_workers=2, epochs=3, batch_size=BATCH, lr=1e-2, amp="auto", early_stopping_patience=0, seed=7)


@pytest.fixture(scope="module")
def runs(ray_session, tmp_path_factory):
    """Both runs' results, plus what each test needs to check them."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    tmp = tmp_path_factory.mktemp("fit")
    run_dir = tmp / "run"
    arrays = {
        "train": windows(50, N_SYMBOLS, seed=1),
        "val": windows(15, N_SYMBOLS, seed=2, start="2024-04-01"),
        "test": windows(10, N_SYMBOLS, seed=3, start="2024-05-01"),
    }
    ds = {k: to_dataset(v) for k, v in arrays.items()}
    data = FitData(ds["train"], ds["val"], N_FEATURES, {"feature_names": list("abcd")}, ds["test"])
    model_cfg = {
        "_target_": FLAKY_TARGET,
        "hidden_size": 16,
        "num_layers": 1,
        "crash_after_calls": TRAIN_ROWS // 2 // BATCH + 1,  # first step of the process's 2nd epoch
        "markers": [str(tmp / "crash_a"), str(tmp / "crash_b")],
    }
    with pytest.raises(ray.train.TrainingFailedError):
        fit(model_cfg, TrainConfig(**CFG, max_failures=0), data, run_dir)
    (run_a,) = [p for p in (run_dir / "checkpoints").glob("train-*")]
    a_checkpoints = sorted(p.name for p in run_a.glob("epoch_*"))
    a_epoch1 = read_meta(run_a / "epoch_0001")["metrics"]
    b_began = time.time()
    result = fit(model_cfg, TrainConfig(**CFG, max_failures=1, resume=True), data, run_dir)
    mp.undo()
    return {"result": result, "run_dir": run_dir, "run_a": run_a, "a_epoch1": a_epoch1, "b_began": b_began,
            "a_checkpoints": a_checkpoints,
            "tmp": tmp, "arrays": arrays, "data": data}


def test_run_a_failed_after_checkpointing_epoch_1(runs):
    assert (runs["tmp"] / "crash_a").exists()
    assert runs["a_checkpoints"] == ["epoch_0001"]
    assert runs["a_epoch1"]["epoch"] == 1


def test_resume_continues_the_same_run_from_its_last_checkpoint(runs):
    result = runs["result"]
    assert result.run_name == runs["run_a"].name  # Ray restored the run instead of starting anew
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    first = result.history[0]
    assert first == pytest.approx(runs["a_epoch1"])  # epoch 1 was not retrained
    assert first["started_at"] < runs["b_began"] < result.history[1]["started_at"]


def test_worker_loss_is_restored_from_the_last_checkpoint(runs):
    assert (runs["tmp"] / "crash_b").exists()
    log_text = (runs["run_dir"] / "run.log").read_text()
    assert log_text.count("failed") >= 2  # one worker failure per run, logged by the controller
    assert "epoch 3/3" in log_text
    # the run's records: B resumed from epoch 1 (train.resume), then FailureConfig restored epoch 2
    restores = json.loads((runs["run_dir"] / "metrics.json").read_text())["restores"]
    assert [(r["from_epoch"], r["workers"]) for r in restores] == [(1, 2), (2, 2)]
    assert "training restored from the epoch-2 checkpoint on 2 worker(s)" in log_text


def test_a_multi_node_cluster_gets_an_elastic_group_a_single_machine_a_fixed_one():
    assert worker_count(TrainConfig(num_workers=2), nodes=1) == 2
    assert worker_count(TrainConfig(num_workers=2), nodes=2) == (1, 2)  # continue on what a node loss leaves
    assert worker_count(TrainConfig(num_workers=4, min_workers=2), nodes=1) == (2, 4)
    assert worker_count(TrainConfig(num_workers=2, min_workers=2), nodes=3) == 2
    assert worker_count(TrainConfig(num_workers=1), nodes=3) == 1
    with pytest.raises(ConfigError, match=r"train.min_workers=3 is outside 1..train.num_workers=2"):
        TrainConfig(num_workers=2, min_workers=3)


def test_ddp_training_lowers_the_validation_loss_below_the_zero_forecast(runs):
    result = runs["result"]
    hist = result.history
    zero_mse = result.baselines["zero"]["mse"]
    assert all(row["train_samples"] == TRAIN_ROWS for row in hist)  # both workers' shards counted
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert result.best_metrics["val_loss"] < 0.5 * zero_mse
    assert result.best_metrics["val_ic"] > 0.5 and result.best_metrics["val_dir_acc"] > 0.6
    assert result.best_metrics["epoch"] == min(hist, key=lambda r: r["val_loss"])["epoch"]
    assert result.baselines["ridge"]["mse"] < zero_mse


def test_best_checkpoint_round_trips_with_metadata(runs):
    result = runs["result"]
    meta = read_meta(result.best_checkpoint)
    assert result.best_checkpoint == runs["run_dir"] / "checkpoints" / "best"
    assert meta["amp"] == ("bf16" if cpu_has_bf16() else "off")  # auto on CPU
    assert meta["extra_meta"] == {"feature_names": ["a", "b", "c", "d"]}
    assert meta["epoch"] == result.best_metrics["epoch"]
    model, _ = load_model(result.best_checkpoint)
    val = runs["arrays"]["val"]
    frame = predict(result.best_checkpoint, val)
    np.testing.assert_allclose(frame["prediction"], model(torch.from_numpy(val["x"])).detach().numpy(), rtol=1e-5)


def test_predictions_and_metrics_files(runs):
    result = runs["result"]
    preds = pd.read_parquet(result.predictions_path)
    assert list(preds.columns) == ["symbol", "ts", "prediction", "label", "split"]
    assert preds["split"].value_counts().to_dict() == {"val": 15 * N_SYMBOLS, "test": 10 * N_SYMBOLS}
    assert str(preds["ts"].dt.tz) == "Asia/Seoul" and (preds["ts"].dt.hour == 15).all()
    # Ray Data batch inference agrees with in-process inference on the same windows
    val = runs["arrays"]["val"]
    local = predict(result.best_checkpoint, val).sort_values(["ts", "symbol"]).reset_index(drop=True)
    remote = preds[preds["split"] == "val"].sort_values(["ts", "symbol"]).reset_index(drop=True)
    assert (local["symbol"] == remote["symbol"]).all()
    np.testing.assert_allclose(remote["prediction"], local["prediction"], rtol=1e-5)
    np.testing.assert_allclose(remote["label"], val["y"][np.lexsort((val["symbol"], pd.DatetimeIndex(val["ts"]).asi8))], rtol=1e-6)
    summary = json.loads(result.metrics_path.read_text())
    assert summary["best_epoch"] == result.best_metrics["epoch"] and len(summary["history"]) == 3
    assert set(summary["baselines"]) == {"zero", "ridge"} and summary["baselines"]["zero"]["ic"] is None
    assert set(summary["timings"]) == {"startup_s", "epochs_s", "shutdown_s", "outputs_s", "total_s"}
    assert all(v >= 0 for v in summary["timings"].values())


def test_bad_inputs_fail_before_ray_train_starts(ray_session, tmp_path):
    arrays = windows(4, 3)
    train = to_dataset(arrays)
    no_ts = train.drop_columns(["ts"])
    started = time.time()
    with pytest.raises(DataError, match="val dataset lacks column"):
        fit({"_target_": "app.models.gru.GRUModel"}, TrainConfig(), (train, no_ts, N_FEATURES, {}), tmp_path)
    with pytest.raises(DataError, match="train windows have 4 features but n_features=5"):
        fit({"_target_": "app.models.gru.GRUModel"}, TrainConfig(), (train, train.limit(5), N_FEATURES + 1, {}), tmp_path)
    with pytest.raises(ConfigError, match="cannot build model"):
        fit({"_target_": "app.models.gru.GRUModel", "hidden": 3}, {}, (train, train, N_FEATURES, {}), tmp_path)
    with pytest.raises(ConfigError, match="holds no training run"):
        fit({"_target_": "app.models.gru.GRUModel"}, {"resume": True}, (train, train, N_FEATURES, {}), tmp_path)
    with pytest.raises(ConfigError, match="persistence_feature='ret_1'"):
        fit({"_target_": "app.models.gru.GRUModel"}, {"persistence_feature": "ret_1"}, (train, train, N_FEATURES, {}), tmp_path)
    assert time.time() - started < 10
