"""Injected faults are survived without loss or duplicates; an exhausted budget is one clear
KisError; secrets stay out of logs and errors throughout."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest

from app.kis.client import KisClient
from app.kis.errors import KisError
from conftest import settings_for, sim_config

D0, D1 = dt.date(2016, 1, 4), dt.date(2024, 6, 14)
FAULTS = dict(seed=5, spurious_rate_limit=0.04, server_error_html=0.04, slow=0.03, slow_seconds=1.0,
              drop=0.04, malformed_json=0.04, token_expire_after=40)


@pytest.fixture(scope="module")
def faulty_sim():
    from app.sim.runner import start_sim_thread

    with start_sim_thread(sim_config(faults=FAULTS, rest_rate_limit=0, token_interval_s=0.5)) as handle:
        yield handle


@pytest.fixture(scope="module")
def broken_sim():
    from app.sim.runner import start_sim_thread

    cfg = sim_config(faults=dict(spurious_rate_limit=1.0))
    cfg.market.start = "2024-01-02"  # a short history: this server only ever fails
    with start_sim_thread(cfg) as handle:
        yield handle


def test_faults_are_survived_exactly(faulty_sim, market, creds, tmp_path, caplog):
    symbols = market.symbols[:3]
    settings = settings_for(faulty_sim, tmp_path, rate_limit=0, timeout_s=0.5, retry_attempts=10,
                            retry_base_s=0.01, retry_cap_s=0.1, token_interval_s=0.5)

    async def main():
        async with KisClient(settings, creds) as kis:
            daily = await kis.map_symbols(kis.daily_bars, symbols, D0, D1)
            minute = await kis.map_symbols(kis.minute_bars, symbols)
            return daily, minute, kis.tokens.current.access_token, kis.stats()

    before = faulty_sim.stats()
    with caplog.at_level(logging.DEBUG, logger="app.kis"):
        daily, minute, token, counters = asyncio.run(main())
    after = faulty_sim.stats()
    assert counters["requests"] == after["requests"] - before["requests"]  # every try, token calls too
    assert counters["retries"] >= 5 and counters["rate_limited"] >= 1 and counters["failed"] == 0
    for symbol, d, m in zip(symbols, daily, minute):
        assert d.equals(market.daily_bars(symbol, D0, D1))
        assert m.equals(market.minute_bars(symbol))
    faults = {k: after["faults"].get(k, 0) - before["faults"].get(k, 0) for k in after["faults"]}
    for kind in ("spurious_rate_limit", "server_error_html", "slow", "drop", "malformed_json"):
        assert faults.get(kind, 0) >= 1, faults
    assert after["token_issuances"] - before["token_issuances"] >= 3  # expired after 40 uses, re-issued
    assert "(try 1; 1 of 10 faults;" in caplog.text
    for secret in (creds.app_key, creds.app_secret, token):
        assert secret not in caplog.text
    assert "SENTINEL" not in caplog.text


def test_rate_limit_rejections_are_retried_until_the_budget_not_a_few_tries(broken_sim, creds, tmp_path, caplog):
    """EGW00201 costs no attempt: a server that only ever rate-limits is retried for the whole
    budget (many more tries than ``retry_attempts``), then given up as a transient failure."""
    settings = settings_for(broken_sim, tmp_path, retry_attempts=3, retry_base_s=0.01, retry_cap_s=0.05,
                            retry_budget_s=1.0)

    async def main():
        async with KisClient(settings, creds) as kis:
            with pytest.raises(KisError) as info:
                await kis.daily_bars("005930", "20240102", "20240614")
            return info.value

    before = broken_sim.stats()
    with caplog.at_level(logging.DEBUG, logger="app.kis"):
        err = asyncio.run(main())
    after = broken_sim.stats()
    rejected = after["spurious_rate_limited"] - before["spurious_rate_limited"]
    assert rejected == err.attempts > 3 * 3  # far past retry_attempts, within one second
    assert err.msg_cd == "EGW00201" and err.status == 500 and err.transient
    assert err.tr_id == "FHKST03010100" and err.request.method == "GET"
    assert err.request.params["FID_INPUT_DATE_2"] == "20240614"
    text = str(err) + repr(err) + caplog.text
    assert "EGW00201" in str(err) and "\n" not in str(err) and "retry_budget_s" in str(err)
    assert "SENTINEL" not in text and "authorization" not in text.lower()


@pytest.fixture(scope="module")
def down_sim():
    """Quotations of 005930 always answer 503 with an HTML body."""
    from app.sim.runner import start_sim_thread

    with start_sim_thread(sim_config(faults=dict(fail_symbols=["005930"]), rest_rate_limit=0)) as handle:
        yield handle


def test_server_faults_are_given_up_after_retry_attempts(down_sim, market, creds, tmp_path):
    settings = settings_for(down_sim, tmp_path, rate_limit=0, retry_attempts=3, retry_base_s=0.01,
                            retry_cap_s=0.05, retry_budget_s=30.0)

    async def main():
        async with KisClient(settings, creds) as kis:
            with pytest.raises(KisError) as info:
                await kis.daily_bars("005930", "20240102", "20240614")
            other = await kis.daily_bars(market.symbols[1], "20240102", "20240614")
            return info.value, other

    err, other = asyncio.run(main())
    assert err.attempts == 3 and err.status == 503 and err.transient
    assert "unreadable response body (HTTP 503)" in str(err)
    assert other.equals(market.daily_bars(market.symbols[1], dt.date(2024, 1, 2), dt.date(2024, 6, 14)))
