"""Several client processes on one app key: one token issuance, one shared pace."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_REDIS

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("kis_worker.py")


def _run_workers(sim, creds, redis_url: str, prefix: str, token_dir: Path, n: int, symbol: str) -> None:
    env = dict(os.environ, KIS_APP_KEY=creds.app_key, KIS_APP_SECRET=creds.app_secret,
               PYTHONPATH=str(ROOT))
    args = [sys.executable, str(WORKER), sim.base_url, redis_url, prefix, str(token_dir), str(n), symbol]
    procs = [subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err[-2000:]
        assert out.strip() == f"ok {n}"
        assert "SENTINEL" not in out + err


@pytest.mark.parametrize("shared", ["redis", "file"])
def test_two_processes_issue_one_token_and_share_the_limit(shared, sim, market, creds, tmp_path, redis_prefix):
    before = sim.stats()
    redis_url = SHARED_REDIS if shared == "redis" else ""
    _run_workers(sim, creds, redis_url, redis_prefix, tmp_path / "tokens", 12, market.symbols[0])
    after = sim.stats()
    assert after["token_issuances"] - before["token_issuances"] == 1
    if shared == "redis":  # without Redis each process paces alone (retries absorb the excess)
        assert after["rate_limited"] - before["rate_limited"] == 0
