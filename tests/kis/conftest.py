"""Fixtures of the kis tests: simulators over HTTP, fresh credentials per test, settings."""
from __future__ import annotations

import functools
import uuid
from pathlib import Path

import pytest

from app.kis.credentials import Credentials
from app.kis.settings import KisSettings
from tests.conftest import shared_redis_url

#: One small market for every kis test: a fixed "today" keeps the ground truth stable.
MARKET = dict(seed=11, n_symbols=8, start="2016-01-04", today="2024-06-14")
SHARED_REDIS = shared_redis_url()  # read after the session made sure one answers


def sim_config(**kw):
    from app.sim.config import FaultConfig, MarketConfig, SimConfig

    faults = FaultConfig(**kw.pop("faults", {}))
    return SimConfig(market=MarketConfig(**MARKET), faults=faults, **kw)


@functools.lru_cache(maxsize=1)
def ground_truth():
    from app.sim.config import MarketConfig
    from app.sim.market import Market

    return Market(MarketConfig(**MARKET))


@pytest.fixture(scope="module")
def market():
    return ground_truth()


@pytest.fixture(scope="module")
def sim():
    """The default simulator (18 req/s, token once a minute) in a thread of this process."""
    from app.sim.runner import start_sim_thread

    with start_sim_thread(sim_config()) as handle:
        yield handle


@pytest.fixture
def creds() -> Credentials:
    """A fresh app key per test: its own rate-limit window and tokens on the simulator.
    Both values contain SENTINEL so that leak checks can search for it."""
    tag = uuid.uuid4().hex
    return Credentials(f"SENTINELKEY{tag}", f"SENTINELSECRET{tag}{'x' * 100}")


def settings_for(handle, token_dir: Path, **kw) -> KisSettings:
    kw.setdefault("redis_url", "")
    return KisSettings(base_url=handle.base_url, token_dir=str(token_dir), **kw)


def delta(before: dict, after: dict, key: str) -> int:
    return after[key] - before[key]
