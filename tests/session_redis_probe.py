"""Run by tests/test_session_redis.py in a pytest of its own (not collected by the suite): what a
test sees of the session's Redis when nothing answered at TEST_REDIS_URL before the run."""
from __future__ import annotations

import os

import redis

from tests.conftest import shared_redis_url


def test_the_session_redis_answers_at_the_shared_address(redis_prefix):
    assert shared_redis_url() == os.environ["PROBE_EXPECTED_URL"]
    client = redis.Redis.from_url(shared_redis_url())
    client.set(f"{redis_prefix}:probe", "1")
    assert client.get(f"{redis_prefix}:probe") == b"1"
