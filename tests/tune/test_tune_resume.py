"""A sweep whose driver is killed (SIGKILL) mid-sweep, then continued with tune.resume=true.

The first driver is a separate process joining this session's Ray instance. It is killed once
the sweep's saved state (what Tune wrote to the experiment folder, the only thing a resume can
know) has two finished trials and one part-way through. The resumed sweep must end with every
trial done, not train the saved finished trials again, continue the part-way trials after their
saved epoch, and carry Optuna's study (every trial told to the searcher, before and after the kill).
With ASHA, every trial ends once (completed or stopped at a rung) and the resumed scheduler's
rungs hold every trial's results, those from before the kill included.
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
SPACE = {"lr": {"path": "train.lr", "type": "loguniform", "low": 1e-4, "high": 1e-2},
         "hidden": {"path": "model.hidden_size", "type": "choice", "values": [8, 16, 32]}}
TUNE = dict(num_samples=SAMPLES, max_t=MAX_T, scheduler="fifo", n_startup_trials=2, max_concurrent_trials=2,
            search_space=SPACE)
ASHA = dict(TUNE, scheduler="asha", grace_period=1, reduction_factor=2)  # rungs at epochs 1 and 2
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


def saved_trials(exp: Path) -> dict[str, tuple[str, int]]:
    """Trial id → (status, last epoch) in the newest experiment state Tune saved."""
    files = sorted(exp.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    try:
        data = json.loads(files[-1].read_text()) if files else {"trial_data": []}
    except (OSError, ValueError):  # being replaced right now
        return {}
    out = {}
    for trial, meta in data["trial_data"]:
        trial, meta = json.loads(trial), json.loads(meta)
        out[trial["trial_id"]] = (trial["status"], int((meta.get("last_result") or {}).get("epoch") or 0))
    return out


def mid_sweep(saved: dict[str, tuple[str, int]]) -> bool:
    done = [t for t, (status, _) in saved.items() if status == "TERMINATED"]
    part_way = [t for t, (status, epoch) in saved.items() if status != "TERMINATED" and 0 < epoch < MAX_T]
    return len(done) >= 2 and bool(part_way)


def start_driver(tmp_path: Path, store: Path, run_dir: Path, address: str, tune: dict) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER).format(root=str(ROOT), store=str(store), train=TRAIN,
                                                      address=address, tune=tune, run_dir=str(run_dir)))  # fmt: skip
    env = dict(os.environ, RAY_AUTH_MODE="token")  # joining a running instance needs its token
    log = open(tmp_path / "driver.log", "w")
    return subprocess.Popen([sys.executable, str(script)], cwd=str(ROOT), env=env, stdout=log, stderr=log)


def kill_mid_sweep(proc: subprocess.Popen, exp: Path, timeout_s: float = 150) -> float:
    """SIGKILL once the saved state is mid-sweep; returns the time of the kill."""
    import psutil

    deadline = time.time() + timeout_s
    while not mid_sweep(saved_trials(exp)):
        assert proc.poll() is None, "the first driver exited before it could be killed"
        assert time.time() < deadline, "the first driver did not get half-way in time"
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    killed_at = time.time()
    proc.wait(timeout=30)
    for child in children:  # a killed driver may leave helpers behind: clean them by PID
        if child.is_running():
            child.kill()
    return killed_at


def wait_for_free_cpus(ray, timeout_s: float = 60) -> None:
    """Ray kills a dead driver's trial actors; wait until their CPUs are back."""
    deadline = time.time() + timeout_s
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources().get("CPU", 0):
        assert time.time() < deadline, "the killed driver's trials still hold CPUs"
        time.sleep(0.2)


def rung_diff(rungs: dict, expected: dict) -> str:
    """Where the scheduler's rungs and the recorded results disagree, one line per milestone."""
    lines = []
    for m in sorted(set(rungs) | set(expected)):
        got, want = rungs.get(m, {}), expected.get(m, {})
        lines.append(f"rung {m}: only in the scheduler {sorted(set(got) - set(want))}, only in the records "
                     f"{sorted(set(want) - set(got))}, differing "
                     f"{ {t: (got[t], want[t]) for t in set(got) & set(want) if got[t] != pytest.approx(want[t])} }")
    return "; ".join(lines)


def expected_rungs(exp: Path, milestones: list[int]) -> dict[int, dict[str, float]]:
    """What ASHA's rungs hold once it has seen every result: each trial's first value at or past
    each milestone (negated: lower val_loss is better)."""
    out: dict[int, dict[str, float]] = {m: {} for m in milestones}
    for trial_dir in exp.glob("trial_*"):
        rows = sorted(result_rows(trial_dir), key=lambda r: r["epoch"])
        for m in milestones:
            first = next((r for r in rows if r["epoch"] >= m), None)
            if first is not None:
                out[m][first["trial_id"]] = -first["val_loss"]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("tune", [TUNE, ASHA], ids=["fifo", "asha"])
def test_resume_after_a_killed_driver_completes_the_sweep_without_repeating_trials(
    ray_session, features_store, make_cfg, tmp_path, monkeypatch, tune
):
    from ray.tune.search.optuna import OptunaSearch

    from app.tune.asha import ResumableASHA
    from app.tune.stage import run

    schedulers: list[ResumableASHA] = []  # the resumed sweep's ASHA (Tune unpickles it from the sweep)
    add = ResumableASHA.on_trial_add
    monkeypatch.setattr(ResumableASHA, "on_trial_add", lambda self, *a: (schedulers.append(self), add(self, *a))[1])
    run_dir = tmp_path / "run"
    exp = run_dir / "tune" / "sweep"
    proc = start_driver(tmp_path, features_store, run_dir, ray_session.get_runtime_context().gcs_address, tune)
    try:
        killed_at = kill_mid_sweep(proc, exp)
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = saved_trials(exp)
    assert mid_sweep(saved)
    wait_for_free_cpus(ray_session)

    result = run(make_cfg(*TRAIN, **tune, resume=True), run_dir)

    frame = pd.read_parquet(result.results_path)
    assert len(frame) == SAMPLES == frame["trial_id"].nunique()
    if tune["scheduler"] == "fifo":
        assert (frame["stop_reason"] == "completed").all() and (frame["epochs_run"] == MAX_T).all()
    else:  # each trial ended once: at max_t, or stopped by ASHA at a rung
        assert set(frame["stop_reason"]) <= {"completed", "stopped"} and (frame["epochs_run"] <= MAX_T).all()
        assert (frame.loc[frame["stop_reason"] == "completed", "epochs_run"] == MAX_T).all()
        assert schedulers, "the resumed sweep did not use ResumableASHA"
        rungs, expected = schedulers[-1].rungs()[0], expected_rungs(exp, [2, 1])
        assert sorted(rungs) == [1, 2] and all(rungs[m] == pytest.approx(expected[m]) for m in (1, 2)), \
            rung_diff(rungs, expected)
    for trial_id, (status, epoch) in saved.items():
        rows = result_rows(exp / f"trial_{trial_id}")
        before = [r["epoch"] for r in rows if r["started_at"] <= killed_at]
        retrained = sorted(r["epoch"] for r in rows if r["started_at"] > killed_at)
        restored = frame.set_index("trial_id").loc[trial_id, "restored_from"]
        if status == "TERMINATED":  # finished before the kill: not trained again
            assert retrained == [] and restored == ""
        elif retrained:  # continued after its saved epoch (or a later recorded one), without a gap, to the end
            assert epoch < retrained[0] <= max(before, default=0) + 1
            assert restored == ("" if retrained[0] == 1 else str(retrained[0] - 1))  # the records say from where
            assert retrained == list(range(retrained[0], max(retrained) + 1))
            assert tune["scheduler"] == "asha" or max(retrained) == MAX_T
        else:  # its last epoch was recorded after the state was saved, or ASHA stopped it: nothing to train
            assert tune["scheduler"] == "asha" or max(before) == MAX_T
    # Optuna's study went through the restart: it holds every trial, each told its best value.
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(exp))
    values = sorted(t.value for t in searcher._ot_study.trials if t.value is not None)
    assert values == pytest.approx(sorted(frame["best_val_loss"]))
