"""Parallel collection with Ray Data actors against the simulator: exact under faults, one shared
rate limit, and resumable after kill -9."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.collect.collect import run
from app.collect.store import BarStore
from tests.conftest import ROOT, compose_config
from tests.data.test_collect import assert_store_equals, market, overrides, truth


@pytest.mark.slow
def test_parallel_collect_with_faults_equals_ground_truth(ray_session, tmp_path: Path):
    syms = market().symbols[:10]
    faults = ["data.sim.faults.seed=3", "data.sim.faults.spurious_rate_limit=0.03",
              "data.sim.faults.server_error_html=0.03", "data.sim.faults.malformed_json=0.02",
              "data.sim.faults.drop=0.02"]
    cfg = compose_config(*overrides(tmp_path / "store", f"data.symbols=[{','.join(syms)}]",
                                    "data.start=2021-01-04", "data.end=2024-06-28", "collect.workers=2",
                                    "collect.batch_size=2", *faults))
    manifest = run(cfg, tmp_path / "run")
    assert manifest["failed"] == {}
    assert manifest["totals"]["retries"] > 0  # the faults were hit and survived
    assert sum(manifest["server_stats"]["faults"].values()) > 0
    assert_store_equals(tmp_path / "store", truth(syms, "2021-01-04", "2024-06-28"))


@pytest.mark.slow
def test_four_actors_share_one_rate_limit(ray_session, tmp_path: Path, redis_prefix):
    syms = market().symbols[:12]
    limit = 12
    cfg = compose_config(*[o for o in overrides(tmp_path / "store") if not o.startswith(("redis.url", "data.sim.rate"))],
                         f"data.symbols=[{','.join(syms)}]", "data.start=2022-01-03", "data.end=2024-06-28",
                         f"data.sim.rate_limit={limit}", "collect.workers=4", "collect.batch_size=3",
                         f"redis.key_prefix={redis_prefix}", "kis.rate_margin=0.05")
    manifest = run(cfg, tmp_path / "run")
    stats = manifest["server_stats"]
    assert manifest["failed"] == {}
    assert stats["rate_limited"] == 0, stats
    assert stats["max_in_window"] <= limit
    assert manifest["totals"]["requests_per_s_active"] > 0.7 * limit  # paced near the limit, not crawling


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_is_exact(tmp_path: Path):
    syms = market().symbols[:N_KILL]
    root = tmp_path / "store"
    args = [sys.executable, "-m", "app.main", *[o for o in overrides(root) if not o.startswith("data.sim.rate")],
            f"data.symbols=[{','.join(syms)}]", "data.start=2021-01-04", "data.end=2024-06-28",
            "data.sim.rate_limit=25", "collect.workers=0", "collect.batch_size=2", "kis.max_connections=2",
            f"hydra.run.dir={tmp_path / 'run1'}"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(BarStore(root).symbols("D")) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its embedded simulator
    proc.wait(timeout=30)
    partial = BarStore(root).symbols("D")
    assert 0 < len(partial) < len(syms), "kill landed outside the run; make the run longer"
    args[-1] = f"hydra.run.dir={tmp_path / 'run2'}"
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_store_equals(root, truth(syms, "2021-01-04", "2024-06-28"))
    assert list(root.rglob(".tmp-*")) == []  # the re-run removed what the killed write left
    assert "was interrupted" in done.stderr + done.stdout and not (root / ".collecting").exists()


N_KILL = 8
