"""``stage=doctor`` through the CLI on this machine, joining the test session's Ray (no second start)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, PrivateRedis, free_port

KEY, SECRET, PASSWORD = "doctor-key-5f3a9c", "doctor-secret-77d1e0", "doctor-redis-pw-4b2c"
SECTIONS = {"python", "torch", "cuda", "gpus", "ray", "redis", "kis", "disk", "market"}


@pytest.fixture(scope="module")
def ray_address(ray_session):
    return ray_session.get_runtime_context().gcs_address


def doctor(run_dir, ray_address, *overrides, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KIS_", "REDIS_URL", "RAY_ADDRESS"))}
    proc = subprocess.run(
        [sys.executable, "-m", "app.main", "stage=doctor", f"ray.address={ray_address}", f"hydra.run.dir={run_dir}",
         f"store.root={run_dir.parent / 'store'}", *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=environ | (env or {}))
    return proc, json.loads((run_dir / "environment.json").read_text())


@pytest.mark.slow
def test_doctor_passes_with_everything_present_and_never_shows_a_secret(tmp_path, ray_address):
    redis = PrivateRedis(password=PASSWORD).start()
    try:
        env = {"KIS_APP_KEY": KEY, "KIS_APP_SECRET": SECRET, "REDIS_URL": redis.url}
        proc, found = doctor(tmp_path / "run", ray_address, "data=kis", "train.amp=off", env=env)
    finally:
        redis.stop()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert SECTIONS <= set(found)
    assert found["redis"]["reachable"] is True and found["redis"]["address"] == f"127.0.0.1:{redis.port}/0"
    assert found["kis"] == {"source": "kis", "set": ["KIS_APP_KEY", "KIS_APP_SECRET"], "unset": ["KIS_ACCOUNT"]}
    assert found["ray"]["started"] is True and found["ray"]["cpus"] >= 1
    assert found["doctor"]["missing"] == []
    assert found["torch"]["cpu_bf16_model"] in (True, False)  # probed with the configured model
    log = (tmp_path / "run" / "run.log").read_text()
    assert sum("environment:" in line for line in log.splitlines()) <= 6
    everything = proc.stdout + proc.stderr + log + (tmp_path / "run" / "environment.json").read_text()
    for secret in (KEY, SECRET, PASSWORD):
        assert secret not in everything


@pytest.mark.slow
def test_doctor_fails_listing_a_redis_that_does_not_answer(tmp_path, ray_address):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    proc, found = doctor(tmp_path / "run", ray_address, f"redis.url={dead}", "train.amp=off")
    assert proc.returncode == 1
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert "doctor: this machine lacks Redis at 127.0.0.1" in line
    assert found["redis"]["reachable"] is False and len(found["doctor"]["missing"]) == 1
