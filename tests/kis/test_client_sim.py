"""The client against the simulator over HTTP: collected bars equal the ground truth exactly."""
from __future__ import annotations

import asyncio
import datetime as dt

import pyarrow.compute as pc
import pytest

from app.errors import DataError
from app.kis.client import KisClient
from app.kis.endpoints import Endpoint, INQUIRE_PRICE
from app.kis.errors import KisError
from conftest import settings_for

D0, D1 = dt.date(2016, 1, 4), dt.date(2024, 6, 14)


def _split_symbol(market) -> str:
    for s in market.symbols:
        if not market.daily_bars(s).column("close").equals(market.daily_bars(s, adjusted=False).column("close")):
            return s
    raise AssertionError("the test market should have a split")


def test_date_bars_equal_ground_truth_across_page_seams(sim, market, creds, tmp_path):
    symbol = _split_symbol(market)
    cases = [
        (D0, D1, "D", True), (D0, D1, "D", False),  # ~2077 rows: 21 pages, split inside
        (dt.date(2017, 3, 15), dt.date(2023, 11, 2), "D", True),  # mid-week, mid-month edges
        (dt.date(2018, 1, 1), D1, "W", True), (D0, D1, "M", False), (D0, D1, "Y", True),
    ]

    async def main():
        async with KisClient(settings_for(sim, tmp_path), creds) as kis:
            return await asyncio.gather(*(kis.daily_bars(symbol, a, b, p, adj) for a, b, p, adj in cases))

    tables = asyncio.run(main())
    for (a, b, period, adjusted), table in zip(cases, tables):
        truth = market.daily_bars(symbol, a, b, period=period, adjusted=adjusted)
        assert table.num_rows > 0
        assert table.equals(truth), (period, adjusted)
    assert tables[0].num_rows > 2000
    assert not tables[0].column("close").equals(tables[1].column("close"))  # adjusted != raw


def test_minute_bars_equal_ground_truth(sim, market, creds, tmp_path):
    symbol = market.symbols[1]

    async def main():
        async with KisClient(settings_for(sim, tmp_path), creds) as kis:
            return await asyncio.gather(kis.minute_bars(symbol), kis.minute_bars(symbol, "101500", "113000"))

    whole, part = asyncio.run(main())
    truth = market.minute_bars(symbol)
    assert whole.num_rows == truth.num_rows > 300  # 13 pages of 30
    assert whole.equals(truth)
    assert whole.column("ts")[0].as_py().date() == market.today  # dated by stck_bsop_date
    lo = dt.datetime(2024, 6, 14, 10, 15, tzinfo=whole.column("ts")[0].as_py().tzinfo)
    hi = lo.replace(hour=11, minute=30)
    mask = pc.and_(pc.greater_equal(truth.column("ts"), lo), pc.less_equal(truth.column("ts"), hi))
    assert part.equals(truth.filter(mask))  # the 10:15 value needed the 10:14 row


def test_single_calls(sim, market, creds, tmp_path):
    symbol = market.symbols[2]

    async def main():
        async with KisClient(settings_for(sim, tmp_path), creds) as kis:
            page = await kis.daily_chart(symbol, D0, D1)
            recent = await kis.daily_price(symbol, "D")
            quote = await kis.inquire_price(symbol)
            approval = await kis.approval_key()
            return page, recent, quote, approval

    page, recent, quote, approval = asyncio.run(main())
    assert page.bars.num_rows == 100
    assert page.summary["itewhol_loan_rmnd_ratem"]  # the live spelling "... name" was normalised
    truth = market.daily_bars(symbol, D0, D1)
    assert page.bars.column("ts")[0].as_py() == truth.column("ts")[-1].as_py()  # newest first
    assert recent.num_rows == 30
    assert recent.select(["ts", "close", "volume"]).equals(truth.slice(truth.num_rows - 30).select(["ts", "close", "volume"]))
    assert quote.price == truth.column("close")[-1].as_py()
    assert len(approval) == 36


def test_business_errors_raise_at_once(sim, creds, tmp_path):
    async def main():
        async with KisClient(settings_for(sim, tmp_path), creds) as kis:
            with pytest.raises(DataError, match="does not list symbol '999999'"):
                await kis.daily_bars("999999", D0, D1)
            before = sim.stats()["requests"]
            with pytest.raises(KisError) as info:
                await kis.get(Endpoint(INQUIRE_PRICE.path, "FHKST99999999"), kis._base("005930"))
            assert sim.stats()["requests"] - before == 1  # not retried
            return info.value

    err = asyncio.run(main())
    assert err.msg_cd == "OPSQ0002" and err.attempts == 1 and err.tr_id == "FHKST99999999"
    assert "fix:" in str(err) and "\n" not in str(err)
    assert err.request.params["FID_INPUT_ISCD"] == "005930"


def test_bad_input_is_one_clear_line(sim, creds, tmp_path):
    async def main():
        async with KisClient(settings_for(sim, tmp_path), creds) as kis:
            with pytest.raises(DataError, match="bad chart period 'Q'"):
                await kis.daily_bars("005930", D0, D1, period="Q")
            with pytest.raises(DataError, match="after end"):
                await kis.daily_bars("005930", D1, D0)
            with pytest.raises(DataError, match="bad time"):
                await kis.minute_bars("005930", "9am")

    asyncio.run(main())


def test_file_token_store_is_0600_and_reused_across_clients(sim, market, creds, tmp_path):
    settings = settings_for(sim, tmp_path / "tokens")

    async def one_client() -> str:
        async with KisClient(settings, creds) as kis:
            await kis.inquire_price(market.symbols[0])
            return kis.tokens.current.access_token

    before = sim.stats()
    first, second = asyncio.run(one_client()), asyncio.run(one_client())
    after = sim.stats()
    assert first == second and after["token_issuances"] - before["token_issuances"] == 1
    files = list((tmp_path / "tokens").glob("*.json"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"
    text = files[0].read_text()
    assert creds.app_secret not in text and creds.app_key not in text and "SENTINEL" not in files[0].name

    async def revoke() -> bool:
        async with KisClient(settings, creds) as kis:
            return await kis.revoke_token()

    assert asyncio.run(revoke()) is True
    assert not files[0].exists()  # revoked: forgotten by the store too
