"""`make test` on a machine without the shared Redis: the session starts (and stops) its own."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_session_without_redis_starts_a_private_one_at_the_shared_address_and_stops_it():
    port = free_port()  # nothing answers here: as on a machine without the shared Redis
    url = f"redis://127.0.0.1:{port}/0"
    env = dict(os.environ, TEST_REDIS_URL=url, PROBE_EXPECTED_URL=url)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/session_redis_probe.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
    assert not _listening(port)  # the session stopped its server
