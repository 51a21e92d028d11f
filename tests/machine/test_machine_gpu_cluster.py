"""Trial sizing on a local Ray cluster that reports a (fake) GPU through ``num_gpus``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "tests" / "machine" / "fake_gpu_sweep.py"


def run_alone() -> dict:
    """The script in its own process group (its own Ray instance), killed whole if it overstays."""
    proc = subprocess.Popen([sys.executable, str(SCRIPT)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_gpu_trials_share_the_clusters_gpu_and_run_together():
    found = run_alone()
    assert found["use_gpu"] is True  # auto, and the cluster has a GPU
    assert found["resources"] == {"CPU": 1.0, "GPU": 0.5} and found["max_concurrent"] == 2
    trials = found["trials"]
    assert len(trials) == 2 and all(t["gpu_ids"] == ["0"] and t["visible"] == "0" for t in trials)
    (a_start, a_end), (b_start, b_end) = sorted((t["started"], t["ended"]) for t in trials)
    assert b_start < a_end  # both at once, on halves of the one GPU
    # Ray hands out the fake GPU; the trial's own CUDA check refuses to pretend it trains on it
    assert all(t["device"].startswith("refused: train.use_gpu is on") for t in trials)
