"""Secrets never reach logs, Hydra's saved config, the store, manifests or error text.

The CLI runs as a user would, against the simulator posing as KIS (kis.base_url), with sentinel
credentials and a password-protected Redis of its own."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.sim.config import MarketConfig, SimConfig
from app.sim.market import Market
from app.sim.runner import start_sim_thread
from tests.conftest import ROOT, PrivateRedis

KEY = "PSsentinelAPPKEY" + "k" * 20
SECRET = "sentinelSECRET" + "s" * 166
REDIS_PASSWORD = "sentinelREDISpw42"
MARKET = MarketConfig(seed=5, n_symbols=4, start="2023-01-02", today="2024-06-28")


def _run(tmp: Path, base_url: str, redis_url: str, secret: str = SECRET) -> subprocess.CompletedProcess:
    env = {**os.environ, "KIS_APP_KEY": KEY, "KIS_APP_SECRET": secret, "REDIS_URL": redis_url}
    syms = ",".join(Market(MARKET).symbols[:2])
    args = [sys.executable, "-m", "app.main", "stage=collect", "data=kis", f"kis.base_url={base_url}",
            f"data.symbols=[{syms}]", "data.start=2024-01-02", f"store.root={tmp / 'store'}",
            "collect.workers=0", f"hydra.run.dir={tmp / 'run'}", "kis.retry_attempts=2"]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def _leaks(tmp: Path, proc: subprocess.CompletedProcess) -> list[str]:
    found = []
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    texts.update({str(p): p.read_bytes().decode("latin-1") for p in tmp.rglob("*") if p.is_file()})
    for where, text in texts.items():
        for secret in (KEY, SECRET, REDIS_PASSWORD):
            if secret in text:
                found.append(f"{secret[:12]}... in {where}")
    return found


@pytest.fixture
def kis_like():
    redis = PrivateRedis(password=REDIS_PASSWORD).start()
    with start_sim_thread(SimConfig(rest_rate_limit=0, app_keys={KEY: SECRET}, market=MARKET)) as sim:
        yield sim, redis
    redis.stop()


def test_a_real_kis_style_run_leaks_no_secret(tmp_path: Path, kis_like):
    sim, redis = kis_like
    proc = _run(tmp_path, sim.base_url, redis.url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / ".hydra" / "config.yaml").exists()
    assert (tmp_path / "run" / "data_manifest.json").exists()
    assert sim.stats()["token_issuances"] == 1
    assert _leaks(tmp_path, proc) == []


def test_wrong_credentials_fail_in_one_line_without_the_secret(tmp_path: Path, kis_like):
    sim, redis = kis_like
    proc = _run(tmp_path, sim.base_url, redis.url, secret="sentinelWRONGsecret" + "w" * 161)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "KIS_APP_SECRET" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert _leaks(tmp_path, proc) == [] and "sentinelWRONG" not in proc.stderr


def test_missing_credentials_name_the_variables(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    proc = subprocess.run([sys.executable, "-m", "app.main", "stage=collect", "data=kis", "data.symbols=[005930]",
                           f"store.root={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "KIS_APP_KEY" in last and "KIS_APP_SECRET" in last
    assert "Ray started" not in (tmp_path / "run" / "run.log").read_text()  # found before anything starts


def test_unreachable_server_fails_fast_in_one_line(tmp_path: Path):
    from tests.conftest import free_port

    env = {**os.environ, "KIS_APP_KEY": KEY, "KIS_APP_SECRET": SECRET}
    proc = subprocess.run([sys.executable, "-m", "app.main", "stage=collect", "data=kis", "data.symbols=[005930]",
                           f"kis.base_url=http://127.0.0.1:{free_port()}", "redis.url=null",
                           f"kis.token_dir={tmp_path / 'tokens'}", f"store.root={tmp_path / 'store'}",
                           f"hydra.run.dir={tmp_path / 'run'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach the KIS server") and "kis.base_url" in last
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.parquet"))
