"""A client process for the cross-process tests: credentials from KIS_APP_KEY/KIS_APP_SECRET.

usage: python kis_worker.py BASE_URL REDIS_URL PREFIX TOKEN_DIR N_REQUESTS SYMBOL
"""
from __future__ import annotations

import asyncio
import sys

from app.kis.client import KisClient
from app.kis.settings import KisSettings


async def main(base_url: str, redis_url: str, prefix: str, token_dir: str, n: int, symbol: str) -> None:
    settings = KisSettings(base_url=base_url, redis_url=redis_url, key_prefix=prefix, token_dir=token_dir)
    async with KisClient(settings) as kis:
        quotes = await kis.map_symbols(kis.inquire_price, [symbol] * n)
    print(f"ok {len(quotes)}")


if __name__ == "__main__":
    url, redis_url, prefix, token_dir, n, symbol = sys.argv[1:7]
    asyncio.run(main(url, redis_url, prefix, token_dir, int(n), symbol))
