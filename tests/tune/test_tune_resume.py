"""A sweep whose driver is killed (SIGKILL) mid-sweep, then continued with tune.resume=true.

The first driver is a separate process joining this session's Ray instance; once two trials
have finished it is killed. The resumed sweep must end with every trial done, leave the
finished trials untouched, continue the interrupted ones from their checkpoints, and carry
Optuna's study (every trial told to the searcher, before and after the kill).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.tune.conftest import result_rows

SAMPLES = 5
MAX_T = 3
TUNE = dict(num_samples=SAMPLES, max_t=MAX_T, scheduler="fifo", n_startup_trials=2, max_concurrent_trials=2,
            search_space={"lr": {"path": "train.lr", "type": "loguniform", "low": 1e-4, "high": 1e-2},
                          "hidden": {"path": "model.hidden_size", "type": "choice", "values": [8, 16, 32]}})  # fmt: skip
TRAIN = ["train.batch_size=128", "train.early_stopping_patience=0", f"train.epochs={MAX_T}"]

DRIVER = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.conftest import compose_config
from tests.tune.conftest import base_overrides, with_tune
cfg = compose_config(*base_overrides(Path({store!r})), *{train!r}, "ray.address={address}")
from app.tune.stage import run
run(with_tune(cfg, **{tune!r}), Path({run_dir!r}))
"""


def ended(times: Path) -> set[str]:
    if not times.exists():
        return set()
    return {json.loads(line)["trial_id"] for line in times.read_text().splitlines()
            if line.strip() and json.loads(line)["event"] == "end"}  # fmt: skip


def start_driver(tmp_path: Path, store: Path, run_dir: Path, address: str) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER).format(root=str(ROOT), store=str(store), train=TRAIN,
                                                      address=address, tune=TUNE, run_dir=str(run_dir)))  # fmt: skip
    env = dict(os.environ, RAY_AUTH_MODE="token")  # joining a running instance needs its token
    log = open(tmp_path / "driver.log", "w")
    return subprocess.Popen([sys.executable, str(script)], cwd=str(ROOT), env=env, stdout=log, stderr=log)


def in_flight(exp: Path, done: set[str]) -> dict[str, list[dict]]:
    """Trials that have reported (and checkpointed) an epoch but not finished."""
    rows = {p.name.removeprefix("trial_"): result_rows(p) for p in exp.glob("trial_*")}
    return {t: r for t, r in rows.items() if t not in done and r}


def kill_mid_sweep(proc: subprocess.Popen, exp: Path, timeout_s: float = 150) -> tuple[set[str], dict]:
    """SIGKILL once two trials have finished and another is part-way through."""
    import psutil

    times = exp.parent / "trial_times.jsonl"
    deadline = time.time() + timeout_s
    while len(ended(times)) < 2 or not in_flight(exp, ended(times)):
        assert proc.poll() is None, "the first driver exited before it could be killed"
        assert time.time() < deadline, "the first driver did not finish two trials in time"
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for child in children:  # a killed driver may leave helpers behind: clean them by PID
        if child.is_running():
            child.kill()
    done = ended(times)
    return done, in_flight(exp, done)


def wait_for_free_cpus(ray, timeout_s: float = 60) -> None:
    """Ray kills a dead driver's trial actors; wait until their CPUs are back."""
    deadline = time.time() + timeout_s
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources().get("CPU", 0):
        assert time.time() < deadline, "the killed driver's trials still hold CPUs"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.xfail(reason="known defect: after kill -9 of the driver, a trial that was mid-epoch can be "
                          "started again from scratch on resume (seen once as trial ids [1, 1, 2, 3])", strict=False)
def test_resume_after_a_killed_driver_completes_the_sweep_without_repeating_trials(
    ray_session, features_store, make_cfg, tmp_path
):
    from ray.tune.search.optuna import OptunaSearch

    from app.tune.stage import run

    run_dir = tmp_path / "run"
    exp = run_dir / "tune" / "sweep"
    proc = start_driver(tmp_path, features_store, run_dir, ray_session.get_runtime_context().gcs_address)
    try:
        finished, partial = kill_mid_sweep(proc, exp)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 2 <= len(finished) < SAMPLES and partial
    before = {t: (exp / f"trial_{t}" / "result.json").read_text() for t in finished}
    wait_for_free_cpus(ray_session)

    cfg = make_cfg(*TRAIN, **TUNE, resume=True)
    result = run(cfg, run_dir)

    frame = pd.read_parquet(result.results_path)
    assert len(frame) == SAMPLES and (frame["stop_reason"] == "completed").all()
    assert (frame["epochs_run"] == MAX_T).all()
    for trial_id in finished:  # finished before the kill: not run again
        assert (exp / f"trial_{trial_id}" / "result.json").read_text() == before[trial_id]
    for trial_id in frame["trial_id"]:  # every trial reported each epoch once, in order
        assert [r["epoch"] for r in result_rows(exp / f"trial_{trial_id}")] == list(range(1, MAX_T + 1))
    for trial_id, rows in partial.items():  # interrupted trials went on from their last checkpoint
        after = result_rows(exp / f"trial_{trial_id}")
        assert after[: len(rows)] == rows and len(after) == MAX_T
    # Optuna's study went through the restart: it holds every trial, each told its best value.
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(exp))
    values = sorted(t.value for t in searcher._ot_study.trials if t.value is not None)
    assert values == pytest.approx(sorted(frame["best_val_loss"]))
