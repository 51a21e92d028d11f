"""The environment check's pieces that need no Ray: needs, the log block, the KRX clock, devices, sizing."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import torch

from app.contracts import KST
from app.errors import ConfigError
from app.krx.calendar import session_state
from app.machine import environment, needs
from app.machine.memory import PeakTreeMemory
from app.train.amp import resolve_amp
from app.train.config import TrainConfig
from app.train.device import peak_gpu_memory, resolve_use_gpu, select_device
from app.train.worker import max_per_key
from app.tune.config import TuneConfig
from app.tune.sweep import size_trials, trial_mode
from tests.conftest import ROOT, compose_config
from tests.machine.memory_testutil import hold_80mb_child

NO_CUDA = not torch.cuda.is_available()


def fake_env(**changes) -> dict:
    env = {"python": {"version": "3.11.7"}, "torch": {"version": "2.13.0+cpu", "build": "cpu"},
           "cuda": {"available": False, "version": None, "cudnn": None}, "gpus": [],
           "ray": {"version": "2.60.0", "started": False, "local_cpus": 2},
           "redis": {"configured": True, "address": "127.0.0.1:6379/0", "reachable": True, "version": "7.0.15"},
           "kis": {"source": "sim", "set": [], "unset": ["KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT"]},
           "disk": {"path": "/data", "free_mb": 50_000, "total_mb": 100_000},
           "market": {"now": "2026-12-01T18:00:00+09:00", "state": "closed", "next_open": "2026-12-02T09:00:00+09:00"}}
    return env | changes


def test_needs_list_only_what_the_configured_stages_lack():
    cfg = compose_config("stage=doctor")
    assert needs.missing(fake_env(), cfg) == []
    down = fake_env(redis={"configured": True, "address": "127.0.0.1:9/0", "reachable": False, "error": "ConnectionError"})
    assert [m.split(" ")[0] for m in needs.missing(down, cfg)] == ["Redis"]
    assert needs.missing(fake_env(redis={"configured": False, "reachable": None}), cfg) == []  # redis.url=''
    kis = fake_env(kis={"source": "kis", "set": ["KIS_APP_KEY"], "unset": ["KIS_APP_SECRET", "KIS_ACCOUNT"]})
    (gap,) = needs.missing(kis, cfg)
    assert "KIS_APP_SECRET" in gap and "KIS_ACCOUNT" not in gap  # the account is optional
    assert needs.missing(kis, compose_config("stage=[doctor,train]")) == []  # no collection, no credentials
    assert "disk" in needs.missing(fake_env(disk={"path": "/d", "free_mb": 10, "total_mb": 100}), cfg)[0]


def test_a_demanded_gpu_is_missing_where_neither_machine_nor_cluster_has_one():
    cfg = compose_config("stage=doctor", "train.use_gpu=false")
    cfg.train.use_gpu = True  # as a joined cluster's config would be (the local check runs at compose time)
    assert "GPU" in needs.missing(fake_env(), cfg)[0]
    started = fake_env(ray={"version": "2.60.0", "started": True, "local_cpus": 2, "cpus": 8.0, "gpus": 2.0})
    assert needs.missing(started, cfg) == []


def test_the_log_block_is_short_and_names_no_secret_value():
    env = fake_env(kis={"source": "kis", "set": ["KIS_APP_KEY", "KIS_APP_SECRET"], "unset": ["KIS_ACCOUNT"]})
    lines = environment.lines(env)
    assert 1 <= len(lines) <= 6
    text = "\n".join(lines)
    assert "KIS_APP_KEY, KIS_APP_SECRET set" in text and "Redis 7.0.15" in text and "KRX closed" in text


@pytest.mark.parametrize("when, state", [
    (dt.datetime(2025, 3, 4, 10, 0), "open"), (dt.datetime(2025, 3, 4, 8, 0), "pre-open"),
    (dt.datetime(2025, 3, 4, 16, 0), "closed"), (dt.datetime(2025, 3, 8, 11, 0), "holiday"),  # a Saturday
    (dt.datetime(2025, 3, 3, 11, 0), "holiday"),  # the Independence Movement Day substitute holiday
])
def test_krx_session_state(when, state):
    out = session_state(when.replace(tzinfo=KST))
    assert out["state"] == state
    if state != "open":
        assert out["next_open"] > out["now"]


def test_use_gpu_resolves_against_the_cluster():
    auto = TrainConfig()
    assert auto.use_gpu == "auto"
    assert resolve_use_gpu(auto, 0).use_gpu is False and resolve_use_gpu(auto, 1).use_gpu is True
    assert resolve_use_gpu(TrainConfig(use_gpu=False), 4).use_gpu is False
    assert TrainConfig(use_gpu="true").use_gpu is True
    with pytest.raises(ConfigError, match="no GPU"):
        resolve_use_gpu(TrainConfig(use_gpu=True), 0)
    with pytest.raises(ConfigError, match="use_gpu"):
        TrainConfig(use_gpu="sometimes")
    with pytest.raises(ConfigError, match="gpus_per_worker"):
        TrainConfig(gpus_per_worker=1.5)


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusals of a machine without CUDA")
def test_cpu_device_and_gpu_only_settings_refused_on_cpu():
    assert select_device(False) == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA device"):
        select_device(True)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        resolve_amp("fp16", select_device(False))
    assert peak_gpu_memory(torch.device("cpu")) == {}


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusal of a machine without CUDA")
def test_use_gpu_true_without_a_gpu_fails_at_the_config_check(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "app.main", "stage=train", "train.use_gpu=true",
                           f"hydra.run.dir={run_dir}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: train.use_gpu=true but this machine has no CUDA GPU (fix: set train.use_gpu=auto (the GPUs there "
        "are) or false, or run where Ray has a GPU)"]
    assert not run_dir.exists()  # found before any work started


def test_trials_are_sized_by_gpus_as_well_as_cpus():
    one, two = TrainConfig(use_gpu=True), TrainConfig(use_gpu=True, num_workers=2)
    assert trial_mode(TuneConfig(), one) == "direct"  # a single-worker GPU trial trains in the trial process
    small = size_trials("direct", one, TuneConfig(num_samples=8), cluster_cpus=4, cluster_gpus=1)
    assert small.resources == {"CPU": 1.0, "GPU": 0.25} and small.max_concurrent == 4  # 4 trials share the GPU
    whole = size_trials("direct", one, TuneConfig(num_samples=8), cluster_cpus=4, cluster_gpus=4)
    assert whole.resources["GPU"] == 1.0 and whole.max_concurrent == 4
    half = TrainConfig(use_gpu=True, gpus_per_worker=0.5)
    assert size_trials("direct", half, TuneConfig(num_samples=8), cluster_cpus=4, cluster_gpus=1).max_concurrent == 2
    nested = size_trials("trainer", two, TuneConfig(num_samples=8), cluster_cpus=8, cluster_gpus=2)
    assert nested.resources["CPU"] == 0 and nested.gpus_per_worker == 0.25 and nested.max_concurrent == 4
    cpu = size_trials("direct", TrainConfig(use_gpu=False), TuneConfig(num_samples=8), 4, cluster_gpus=2)
    assert cpu.resources == {"CPU": 1.0} and cpu.gpus_per_worker == 0.0
    with pytest.raises(ConfigError, match="GPUs"):
        size_trials("trainer", TrainConfig(use_gpu=True, num_workers=2, gpus_per_worker=1), TuneConfig(), 4, 1)


def test_gpu_peaks_take_the_busiest_rank():
    rows = [{"gpu_peak_allocated_mb": 10.0, "gpu_peak_reserved_mb": 20.0}, {"gpu_peak_allocated_mb": 30.0}, {}]
    assert max_per_key(rows) == {"gpu_peak_allocated_mb": 30.0, "gpu_peak_reserved_mb": 20.0}
    assert max_per_key([{}, {}]) == {}


def test_process_tree_memory_is_at_least_the_drivers_and_counts_children():
    with PeakTreeMemory(every_s=0.1) as memory:
        hold_80mb_child()
    figures = memory.figures()
    assert figures["peak_rss_mb"] >= figures["driver_peak_rss_mb"] > 0
    assert figures["peak_rss_mb"] - figures["driver_peak_rss_mb"] > 60  # the child's 80 MB


def test_a_model_that_cannot_run_bf16_on_this_cpu_is_listed_for_cpu_training():
    cfg = compose_config("stage=doctor")  # the default LSTM, train.amp=auto
    broken = fake_env(torch={"version": "2.13.0+cpu", "build": "cpu", "cpu_bf16_model": False})
    (gap,) = needs.missing(broken, cfg)
    assert gap.startswith("bf16 kernels on this CPU for LSTMModel") and "train.amp=off" in gap
    assert needs.missing(broken, compose_config("stage=doctor", "train.amp=off")) == []
    on_gpu = broken | {"ray": {"version": "2.60.0", "started": True, "cpus": 8.0, "gpus": 1.0}}
    assert needs.missing(on_gpu, cfg) == []  # auto trains on the cluster's GPU


def test_the_bf16_probe_runs_the_configured_model():
    from app.machine.probe import cpu_bf16_works

    lstm = {"_target_": "app.models.lstm.LSTMModel", "hidden_size": 8, "num_layers": 1}
    try:  # what this CPU does with a bare LSTM under bf16 autocast
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(4, 8, batch_first=True)(torch.zeros(2, 3, 4))
        expected = True
    except RuntimeError:
        expected = False
    assert cpu_bf16_works(lstm) is expected
    assert cpu_bf16_works({"_target_": "app.models.nope.Nothing"}) is None
