"""Fixtures for the simulator tests: one server per module, and a client holding a fresh token."""
from __future__ import annotations

import aiohttp
import pytest

from app.sim.runner import start_sim_thread
from sim_testutil import Kis, sim_config


@pytest.fixture(scope="module")
def sim():
    """One simulator per test module (unlimited rate, no faults)."""
    handle = start_sim_thread(sim_config(token_interval_s=0.0))
    yield handle
    handle.stop()


@pytest.fixture
async def kis(sim):
    async with aiohttp.ClientSession() as session:
        client = Kis(session, sim.base_url)
        assert (await client.issue()).status == 200
        yield client
