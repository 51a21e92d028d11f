"""Past minute bars (FHKST03010230) through the client: equal to the simulator's ground truth
across page seams (120 rows a page, 381 bars a session) and across weekends."""
from __future__ import annotations

import asyncio
import datetime as dt

import pyarrow as pa
import pytest

from app.errors import ConfigError
from app.kis.client import KisClient
from conftest import settings_for


def _truth(market, symbol: str, start: dt.date, end: dt.date) -> pa.Table:
    days = [d for d in market.sessions() if start <= d <= end]
    return pa.concat_tables([market.minute_bars(symbol, d) for d in days])


def test_past_minute_bars_equal_ground_truth_across_page_seams(sim, market, creds, tmp_path):
    symbol = market.symbols[2]
    cases = [
        (dt.date(2024, 6, 7), market.today),            # six sessions, a weekend inside, today included
        (dt.date(2024, 6, 8), dt.date(2024, 6, 11)),     # starts on a Saturday, ends in the past
        (dt.date(2024, 6, 12), dt.date(2024, 6, 12)),    # one session: four pages, the last one short
    ]

    async def main():
        async with KisClient(settings_for(sim, tmp_path), creds) as kis:
            tables = [await kis.past_minute_bars(symbol, a, b) for a, b in cases]
            return tables, kis.stats()["requests"]

    before = sim.stats()["requests"]
    tables, _ = asyncio.run(main())
    for (a, b), table in zip(cases, tables):
        truth = _truth(market, symbol, a, b)
        assert table.num_rows == truth.num_rows > 0, (a, b)
        assert table.equals(truth), (a, b)
    assert tables[0].num_rows == 6 * 381
    # 2286 + 762 + 381 rows in 120-row pages: a request per page (plus one token), nothing wasted
    assert sim.stats()["requests"] - before <= 20 + 7 + 4 + 1


def test_past_minute_bars_are_refused_on_the_paper_host(sim, creds, tmp_path):
    async def main():
        async with KisClient(settings_for(sim, tmp_path, env="paper"), creds) as kis:
            await kis.past_minute_bars("005930", "2024-06-10")

    with pytest.raises(ConfigError, match="FHKST03010230 is not served on the paper host"):
        asyncio.run(main())
