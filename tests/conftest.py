"""Session-wide fixtures: one Ray instance per test session, free ports, private Redis servers.

The suite's shared Redis is ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``, where the
pipeline looks by default). When nothing answers there, the session starts a private
``redis-server`` on that port for its own run and stops it at the end.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
_session_redis: list["PrivateRedis"] = []  # the server this session started, if any


def shared_redis_url() -> str:
    """The Redis every test may use with a unique key prefix (see ``redis_prefix``)."""
    return os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    """No Redis at the shared address: start a private one there for this run."""
    url = shared_redis_url()
    if redis_answers(url):
        return
    if shutil.which("redis-server") is None:
        raise pytest.UsageError(f"nothing answers at {url} and redis-server is not installed: "
                                "install redis-server or set TEST_REDIS_URL to a running Redis")
    parts = urlsplit(url)
    try:
        server = PrivateRedis(port=parts.port or 6379).start()
    except RuntimeError:
        raise pytest.UsageError(f"nothing answers at {url} and its port is taken: free it or set TEST_REDIS_URL")
    _session_redis.append(server)
    os.environ["TEST_REDIS_URL"] = url  # subprocesses of the suite find it too


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    while _session_redis:
        _session_redis.pop().stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_session():
    """Ray started once for the whole session (start-up costs ~5 s; per-test init would dominate)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            object_store_memory=256 * 1024**2,
            log_to_driver=False,
            include_dashboard=True,
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def shared_cluster():
    """The real 2-node cluster the cluster tests share (see ``SharedCluster``); stopped by PID at the
    end of the session at the latest, even on failure."""
    from tests.cluster_testutil import SharedCluster

    holder = SharedCluster()
    yield holder
    holder.stop()


class PrivateRedis:
    """A redis-server of our own on a free port, for tests that stop or break Redis."""

    def __init__(self, password: str | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.password = password
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break  # exited: the port is taken
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture
def redis_prefix():
    """A unique key prefix on the shared Redis, removed afterwards."""
    import redis

    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(shared_redis_url())
    try:
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass


def compose_config(*overrides: str):
    """The pipeline's typed config as ``python -m app.main <overrides>`` would compose and validate it."""
    from hydra import compose, initialize_config_dir

    from app import config as schema

    schema.register()
    if not any(o.startswith("redis.url=") for o in overrides):  # the suite's Redis, wherever it is
        overrides = (f"redis.url={shared_redis_url()}", *overrides)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    return schema.validate(cfg)  # the typed AppConfig every stage gets
