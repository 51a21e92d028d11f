"""A Redis password stays on the nodes: actor and task arguments carry the URL without it, and each
node adds the one its own ``REDIS_URL`` holds."""
from __future__ import annotations

import datetime as dt
import os
import pickle
import secrets
import shutil
import subprocess
import sys
import tempfile

import psutil
import pytest
from ray import cloudpickle

from app.collect.collect import actor_arguments
from app.collect.collect_symbol import CollectSpec
from app.kis.credentials import Credentials
from app.kis.redis_conn import ENV_REDIS_URL, on_this_node, without_password
from app.kis.settings import KisSettings
from tests.conftest import ROOT, PrivateRedis


@pytest.mark.parametrize("url, public", [
    ("redis://:s3cret@10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
    ("rediss://app:s3cret@redis.internal:6380/2", "rediss://app@redis.internal:6380/2"),
    ("redis://10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
    ("redis://app@10.0.0.5/0", "redis://app@10.0.0.5/0"),
])
def test_without_password_keeps_everything_else(url, public):
    assert without_password(url) == public


def test_a_node_adds_its_password_only_for_the_same_server(monkeypatch):
    monkeypatch.setenv(ENV_REDIS_URL, "redis://:s3cret@10.0.0.5:6379/0")
    assert on_this_node("redis://10.0.0.5:6379/0") == "redis://:s3cret@10.0.0.5:6379/0"
    assert on_this_node("redis://10.0.0.5:6379/1") == "redis://10.0.0.5:6379/1"  # another database
    assert on_this_node("redis://10.0.0.9:6379/0") == "redis://10.0.0.9:6379/0"  # another server
    assert on_this_node("redis://:given@10.0.0.5:6379/0") == "redis://:given@10.0.0.5:6379/0"
    monkeypatch.delenv(ENV_REDIS_URL)
    assert on_this_node("redis://10.0.0.5:6379/0") == "redis://10.0.0.5:6379/0"


def test_the_collection_actors_arguments_carry_no_password():
    password = secrets.token_hex(16)
    url = f"redis://:{password}@10.0.0.5:6379/0"
    spec = CollectSpec(freq="D", start=dt.date(2024, 1, 2), end=None, adjusted=True, source="kis", store_root="/s")
    kwargs = actor_arguments(spec, KisSettings(redis_url=url), None, (url, "krx", 60))
    assert kwargs["settings"].redis_url == "redis://10.0.0.5:6379/0"
    assert kwargs["hot"] == ("redis://10.0.0.5:6379/0", "krx", 60)
    assert password.encode() not in cloudpickle.dumps(kwargs) and password not in repr(kwargs)
    sim = Credentials("PSsimulatorkey", "simsecret")  # the simulator's throwaway pair does travel
    assert pickle.loads(cloudpickle.dumps(actor_arguments(spec, KisSettings(), sim, None)))["credentials"] == sim


NODE_SCRIPT = """
import json, ray
from app.collect.redis_nodes import check_every_node
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _temp_dir={temp_dir!r})
print("NODES", check_every_node({public!r}))
try:
    check_every_node({other_db!r})
except Exception as exc:
    print("ERROR", exc)
ray.shutdown()
"""


def _stop_ray_under(temp_dir: str) -> None:
    """Kill, by PID, what a Ray started with this temp dir left running (nothing else)."""
    procs = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in a for a in p.info["cmdline"] or []):
                procs.append(p)
                p.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(procs, timeout=10)


@pytest.mark.timeout(180)
def test_a_task_on_the_node_reads_the_password_from_the_node_environment():
    password = secrets.token_hex(16)
    server = PrivateRedis(password=password).start()
    temp_dir = tempfile.mkdtemp(prefix="krxr-", dir=os.environ.get("RAY_TMPDIR", "/tmp"))  # short socket paths
    try:
        public = without_password(server.url)
        script = NODE_SCRIPT.format(public=public, other_db=public.rsplit("/", 1)[0] + "/1", temp_dir=temp_dir)
        env = {**os.environ, ENV_REDIS_URL: server.url}  # the node's own variable, not an argument
        proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=150)
    finally:
        server.stop()
        _stop_ray_under(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NODES 1" in proc.stdout  # the ping task got the public URL and authenticated with the node's
    (error,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("ERROR")]
    assert "AuthenticationError" in error and "export REDIS_URL with its password on every node" in error
    assert password not in proc.stdout + proc.stderr
