"""The loop body without Ray: epochs, AMP, accumulation, schedules, early stopping, checkpoints."""
from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch
from torch import nn

from app.errors import ConfigError, DataError
from app.models.factory import build_model, load_model
from app.train.amp import cpu_has_bf16, resolve_amp
from app.train.batches import array_batches
from app.train.checkpoint import capture_rng, read_checkpoint, restore_rng, write_checkpoint
from app.train.config import TrainConfig
from app.train.loop import (
    EarlyStopping,
    Optimization,
    make_loss,
    predict_batches,
    seed_everything,
    steps_per_epoch,
    train_epoch,
    accumulation_groups,
)
from app.train.predict import predict
from app.typed import typed
from train_testutil import N_FEATURES, LastStepLinear, ddp_accumulation_worker, train_steps, windows

CPU = torch.device("cpu")
LSTM = {"_target_": "app.models.lstm.LSTMModel", "hidden_size": 16, "num_layers": 1}


def run_epochs(cfg: TrainConfig, epochs: int, data: dict, amp_mode: str = "off") -> tuple[nn.Module, list[float], Optimization]:
    seed_everything(cfg.seed)
    model = build_model(LSTM, N_FEATURES)
    amp = resolve_amp(amp_mode, CPU)
    opt = Optimization(model, cfg, amp, steps_per_epoch(len(data["x"]), cfg) * epochs)
    losses = []
    for epoch in range(epochs):
        batches = array_batches(data["x"], data["y"], cfg.batch_size, shuffle=True, seed=epoch)
        losses.append(train_epoch(model, batches, opt, make_loss(cfg), amp, cfg.grad_accum_steps).loss)
    return model, losses, opt


@pytest.fixture(scope="module")
def data() -> dict:
    return windows(40, 20, seed=3)


def test_training_epochs_lower_the_loss(data):
    _, losses, _ = run_epochs(TrainConfig(lr=1e-2, batch_size=64), 4, data)
    assert losses[-1] < 0.5 * losses[0]


def test_auto_amp_is_full_precision_on_a_cpu_without_bf16_kernels(monkeypatch):
    import app.train.amp as amp

    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: False)
    assert resolve_amp("auto", CPU).dtype is None
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: True)
    assert resolve_amp("auto", CPU).dtype == torch.bfloat16


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 kernels (oneDNN's bf16 LSTM fails)")
def test_bf16_autocast_on_cpu_trains_and_predicts_in_float32(data):
    cfg = TrainConfig(lr=1e-2, batch_size=64, amp="auto")
    assert resolve_amp("auto", CPU).dtype == torch.bfloat16
    model, losses, _ = run_epochs(cfg, 3, data, amp_mode="auto")
    assert losses[-1] < 0.6 * losses[0]
    out = predict_batches(model, array_batches(data["x"], data["y"], 128, ts=data["ts"]), resolve_amp("bf16", CPU))
    assert out["pred"].dtype == np.float32 and out["pred"].shape == (len(data["y"]),)
    assert out["ts"].dtype == np.int64 and len(np.unique(out["ts"])) == 40


def test_amp_policies():
    assert resolve_amp("auto", CPU).dtype == (torch.bfloat16 if cpu_has_bf16() else None)
    assert resolve_amp("off", CPU).dtype is None
    assert resolve_amp("bf16", CPU).use_scaler is False
    assert not resolve_amp("auto", CPU).grad_scaler().is_enabled()
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        resolve_amp("fp16", CPU)


def test_accumulating_two_half_batches_equals_one_full_batch(data):
    x, y = data["x"][:32], data["y"][:32]
    amp = resolve_amp("off", CPU)
    results = []
    for batch_size, accum in ((32, 1), (16, 2)):
        torch.manual_seed(0)
        model = LastStepLinear()
        cfg = TrainConfig(batch_size=batch_size, grad_accum_steps=accum, scheduler="none", clip_grad_norm=0.5)
        opt = Optimization(model, cfg, amp, total_steps=1)
        stats = train_epoch(model, array_batches(x, y, batch_size), opt, make_loss(cfg), amp, accum)
        assert stats.steps == 1 and stats.samples == 32
        results.append(copy.deepcopy(model.state_dict()))
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key])


def test_a_partial_accumulation_group_at_epoch_end_still_steps(data):
    cfg = TrainConfig(batch_size=10, grad_accum_steps=2, scheduler="none")
    model = LastStepLinear()
    amp = resolve_amp("off", CPU)
    opt = Optimization(model, cfg, amp, total_steps=2)
    stats = train_epoch(model, array_batches(data["x"][:30], data["y"][:30], 10), opt, make_loss(cfg), amp, 2)
    assert (stats.steps, opt.steps_done) == (2, 2) == (steps_per_epoch(30, cfg), 2)
    assert all(p.grad is None for p in model.parameters())  # nothing left half-accumulated


@pytest.mark.parametrize("rows, micro, accum, full", [
    (30, 10, 2, 20),  # groups of 10+10 and a last group of one micro-batch (10)
    (25, 10, 3, 25),  # one group of 10+10+5: a short last micro-batch
    (45, 10, 2, 20),  # 10+10, 10+10, and a last group of one short micro-batch (5)
])  # fmt: skip
def test_every_accumulation_group_equals_one_batch_of_its_samples(data, rows, micro, accum, full):
    """The same weights as training on batches of the groups' samples, the short last group included."""
    x, y = data["x"][:rows], data["y"][:rows]
    accumulated = train_steps(array_batches(x, y, micro), accum)
    whole = train_steps(array_batches(x, y, full), 1)
    for key in whole:
        torch.testing.assert_close(accumulated[key], whole[key])


def test_accumulation_with_two_ddp_workers_equals_one_full_batch(data, tmp_path):
    """2 gloo processes, each 2 micro-batches of 16 per step: the steps of one batch of all 64 rows."""
    import torch.multiprocessing as mp

    x, y = data["x"][:128], data["y"][:128]
    shards = [(x[r::2], y[r::2]) for r in range(2)]  # each worker's own rows
    mp.spawn(ddp_accumulation_worker, args=(2, shards, 16, 2, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    # one process, each step one batch of the 32 rows each worker used in that step
    step_rows = [slice(k * 32, (k + 1) * 32) for k in range(2)]
    batches = [{key: torch.from_numpy(np.concatenate([shard[i][rows] for shard in shards])) for i, key in enumerate("xy")}
               for rows in step_rows]  # fmt: skip
    whole = train_steps(batches, 1)
    for key in whole:
        torch.testing.assert_close(ranks[0][key], ranks[1][key])  # DDP kept the workers identical
        torch.testing.assert_close(ranks[0][key], whole[key])


def test_accumulation_groups_keep_order_and_the_short_rest():
    assert list(accumulation_groups("abcde", 2)) == [["a", "b"], ["c", "d"], ["e"]]
    assert list(accumulation_groups("ab", 1)) == [["a"], ["b"]]
    assert list(accumulation_groups([], 3)) == []


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_schedules_follow_their_shape_and_tolerate_extra_steps(scheduler):
    model = LastStepLinear()
    cfg = TrainConfig(lr=1e-2, scheduler=scheduler, onecycle_pct_start=0.3, clip_grad_norm=None)
    amp = resolve_amp("off", CPU)
    opt = Optimization(model, cfg, amp, total_steps=10)
    lrs = []
    for _ in range(12):  # two more than planned: a resumed run may do that
        model(torch.randn(2, 3, N_FEATURES)).sum().backward()
        opt.step(model)
        lrs.append(opt.lr)
    if scheduler == "cosine":
        assert lrs[0] < 1e-2 and all(a >= b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 0.03 * 1e-2
    else:
        assert max(lrs) == pytest.approx(1e-2) and int(np.argmax(lrs)) == 1 and lrs[-1] < 1e-6
    assert lrs[-1] == lrs[-2] == lrs[-3]  # held after the planned steps


def test_optimization_state_round_trips(data):
    cfg = TrainConfig(lr=1e-2, batch_size=64, scheduler="onecycle")
    model, _, opt = run_epochs(cfg, 2, data)
    fresh = Optimization(model, cfg, resolve_amp("off", CPU), total_steps=999)
    fresh.load_state_dict(opt.state_dict())
    assert (fresh.lr, fresh.steps_done, fresh.total_steps) == (opt.lr, opt.steps_done, opt.total_steps)
    assert fresh.optimizer.state_dict()["state"][0]["step"] == opt.optimizer.state_dict()["state"][0]["step"]


def test_early_stopping_counts_epochs_without_improvement():
    stop = EarlyStopping("min", patience=2)
    assert [stop.update(v, e) for e, v in enumerate([1.0, 0.9, float("nan"), 0.95], start=1)] == [True, True, False, False]
    assert stop.should_stop and (stop.best, stop.best_epoch) == (0.9, 2)
    up = EarlyStopping("max", patience=0)
    assert up.update(0.1, 1) and not up.update(0.05, 2) and not up.should_stop


def test_checkpoint_round_trip_restores_model_optimizer_and_rng(tmp_path, data):
    cfg = TrainConfig(lr=1e-2, batch_size=64)
    model, _, opt = run_epochs(cfg, 1, data)
    early = EarlyStopping("min", 3, best=0.5, best_epoch=1, bad_epochs=0)
    seed_everything(123)
    rng = capture_rng()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    meta = {"model_cfg": LSTM, "n_features": N_FEATURES, "extra_meta": {"scaler": {"mean": [0.0]}}, "history": [{"epoch": 1, "ic": float("nan")}]}
    write_checkpoint(tmp_path, model=model, optimization=opt.state_dict(), early=early, epoch=1, rng=[rng], meta=meta)

    state = read_checkpoint(tmp_path)
    assert state.epoch == 1 and state.early["best"] == 0.5
    assert state.meta["history"] == [{"epoch": 1, "ic": None}]  # NaN stored as JSON null
    restore_rng(state.rng[0])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected

    loaded, meta_back = load_model(tmp_path)
    assert meta_back["extra_meta"] == {"scaler": {"mean": [0.0]}}
    model.eval()
    x = torch.from_numpy(data["x"][:5])
    torch.testing.assert_close(loaded(x), model(x))

    frame = predict(tmp_path, {"x": data["x"][:5], "y": data["y"][:5], "symbol": data["symbol"][:5], "ts": data["ts"][:5]})
    assert list(frame.columns) == ["symbol", "ts", "prediction", "label"]
    np.testing.assert_allclose(frame["prediction"], model(x).detach().numpy(), rtol=1e-5)
    assert str(frame["ts"].dt.tz) == "Asia/Seoul" and frame["ts"].iloc[0].hour == 15


def test_train_config_checks_values_and_keys():
    assert typed(TrainConfig, {"epochs": 3, "amp": "bf16"}, "train").epochs == 3
    with pytest.raises(ConfigError, match="train.epoch: Key 'epoch' not in 'TrainConfig'"):
        typed(TrainConfig, {"epoch": 3}, "train")
    with pytest.raises(ConfigError, match="train.epochs: Value 'many'"):
        typed(TrainConfig, {"epochs": "many"}, "train")
    with pytest.raises(ConfigError, match="train.amp='fp8' is unknown"):
        TrainConfig(amp="fp8")
    with pytest.raises(ConfigError, match="train.grad_accum_steps=0"):
        TrainConfig(grad_accum_steps=0)
    with pytest.raises(ConfigError, match="train.monitor='loss'"):
        TrainConfig(monitor="loss")
    assert TrainConfig(monitor="val_rank_ic").monitor_mode == "max"


def test_predict_on_bare_windows_fills_missing_columns(tmp_path, data):
    model = build_model(LSTM, N_FEATURES)
    write_checkpoint(
        tmp_path, model=model, optimization={}, early=EarlyStopping("min", 0), epoch=1, rng=[],
        meta={"model_cfg": LSTM, "n_features": N_FEATURES, "extra_meta": {"scale": np.array([1.5, 2.0])}},
    )
    frame = predict(tmp_path, {"x": data["x"][:3]})
    assert len(frame) == 3 and frame["symbol"].isna().all() and frame["ts"].isna().all() and frame["label"].isna().all()
    assert load_model(tmp_path)[1]["extra_meta"] == {"scale": [1.5, 2.0]}
    with pytest.raises(DataError, match="not \\(n, seq_len, n_features\\)"):
        predict(tmp_path, {"x": data["x"][0]})
    with pytest.raises(DataError, match="does not exist"):
        predict(tmp_path / "missing", {"x": data["x"][:3]})


def test_the_composed_train_section_is_train_configs_defaults_with_the_runs_seed():
    from tests.conftest import compose_config

    assert compose_config().train == TrainConfig(seed=42)  # conf/train/default.yaml only sets seed: ${seed}
    assert compose_config("seed=7", "train.lr=3e-4").train == TrainConfig(seed=7, lr=3e-4)


def test_a_predictor_actor_leaves_its_window_tasks_a_share_of_the_cluster():
    from app.train.predict import actor_cpus

    assert actor_cpus(1.0, 1, 1.0) == 0.5  # 1 CPU left: the actor and a 0.5-CPU window task both fit
    assert actor_cpus(1.0, 1, 2.0) == 0.5  # a stale count of 2 after a node loss cannot make it 1 CPU
    assert actor_cpus(1.0, 1, 0.0) == 0.5  # Ray not sized yet
    assert actor_cpus(4.0, 2, 3.0) == 1.0  # several threads: at most the cluster's share
    assert actor_cpus(4.0, 1, 16.0) == 4.0
