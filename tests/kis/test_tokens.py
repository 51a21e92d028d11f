"""Token lifecycle against the real stores (file, Redis) with a scripted issuer."""
from __future__ import annotations

import asyncio
import json
import os
import stat
import time

import pytest

from app.kis.redis_conn import connect
from app.kis.retry import Retryable
from app.kis.token_store import FileTokenStore, RedisTokenStore
from app.kis.tokens import Token, TokenManager, TokenThrottled
from conftest import SHARED_REDIS


class Issuer:
    """Counts calls; hands out tokens that live ``life`` seconds, or raises what it is told to."""

    def __init__(self, life: float = 3600.0, fail: list[BaseException] | None = None) -> None:
        self.calls, self.life, self.fail = 0, life, list(fail or [])
        self.on_call = None

    async def __call__(self) -> Token:
        self.calls += 1
        if self.on_call:
            await self.on_call()
        if self.fail:
            raise self.fail.pop(0)
        now = time.time()
        return Token(f"TOKEN-SENTINEL-{self.calls}-{now}", now + self.life, now)


def test_token_is_cached_and_file_is_0600(tmp_path):
    async def main():
        issuer = Issuer()
        store = FileTokenStore("kid", tmp_path)
        first = TokenManager(store, issuer, interval_s=60)
        a = await first.get()
        b = await first.get()
        second = TokenManager(store, issuer, interval_s=60)  # a new client instance
        c = await second.get()
        return issuer, a, b, c, store

    issuer, a, b, c, store = asyncio.run(main())
    assert issuer.calls == 1 and a == b == c
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert json.loads(store.path.read_text())["access_token"] == a.access_token


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_concurrent_managers_issue_once(kind, tmp_path, redis_prefix):
    async def main():
        issuer = Issuer()
        clients = []

        def store():
            if kind == "file":
                return FileTokenStore("kid", tmp_path)
            clients.append(connect(SHARED_REDIS))
            return RedisTokenStore(clients[-1], "kid", redis_prefix)

        managers = [TokenManager(store(), issuer, interval_s=60, poll_s=0.05) for _ in range(4)]
        tokens = await asyncio.gather(*(m.get() for m in managers for _ in range(3)))
        for c in clients:
            await c.aclose()
        return issuer, tokens

    issuer, tokens = asyncio.run(main())
    assert issuer.calls == 1
    assert len({t.access_token for t in tokens}) == 1


def test_throttled_issuance_waits_for_the_token_another_process_stored(tmp_path):
    async def main():
        store = FileTokenStore("kid", tmp_path)
        issuer = Issuer(fail=[TokenThrottled("403 EGW00133", status=403, msg_cd="EGW00133")])
        now = time.time()
        theirs = Token("TOKEN-SENTINEL-theirs", now + 3600, now)

        async def other_process_saves_later():
            await asyncio.sleep(0.3)
            await store.save(theirs.to_json(), 3600)

        manager = TokenManager(store, issuer, interval_s=60, poll_s=0.05)
        got, _ = await asyncio.gather(manager.get(), other_process_saves_later())
        return issuer, got, theirs

    issuer, got, theirs = asyncio.run(main())
    assert got == theirs and issuer.calls == 1  # no second issuance within the minute


def test_refresh_before_expiry_but_keep_using_a_valid_token(tmp_path):
    async def main():
        store = FileTokenStore("kid", tmp_path)
        issuer = Issuer(life=2.0)  # half-life refresh: due after 1 s
        manager = TokenManager(store, issuer, interval_s=1.5, refresh_before_s=600)
        first = await manager.get()
        await asyncio.sleep(1.1)
        due_but_claim_busy = await manager.get()  # still valid, next issuance not allowed yet
        calls_then = issuer.calls
        await asyncio.sleep(0.5)
        refreshed = await manager.get()  # claim free again: refreshed before expiry
        return issuer, calls_then, first, due_but_claim_busy, refreshed

    issuer, calls_then, first, busy, refreshed = asyncio.run(main())
    assert busy == first and calls_then == 1
    assert refreshed != first and issuer.calls == 2
    assert refreshed.expires_at > first.expires_at


def test_invalidate_removes_only_that_token(tmp_path):
    async def main():
        store = FileTokenStore("kid", tmp_path)
        issuer = Issuer()
        manager = TokenManager(store, issuer, interval_s=0.2, poll_s=0.05)
        first = await manager.get()
        await manager.invalidate("some-other-token")
        kept = await store.load()
        await manager.invalidate(first.access_token)
        gone = await store.load()
        second = await manager.get()
        return first, kept, gone, second, issuer

    first, kept, gone, second, issuer = asyncio.run(main())
    assert kept is not None and gone is None
    assert second != first and issuer.calls == 2


def test_transient_issuance_failure_is_retried_after_the_interval(tmp_path):
    async def main():
        issuer = Issuer(fail=[Retryable("connection failed")])
        manager = TokenManager(FileTokenStore("kid", tmp_path), issuer, interval_s=0.3, poll_s=0.05)
        t0 = time.monotonic()
        token = await manager.get()
        return issuer, token, time.monotonic() - t0

    issuer, token, waited = asyncio.run(main())
    assert issuer.calls == 2 and token.access_token.startswith("TOKEN-SENTINEL-2")
    assert waited >= 0.3  # the second attempt respected the issuance interval


def test_token_repr_hides_the_value():
    tok = Token("TOKEN-SENTINEL-x", 1e10, 0)
    assert "SENTINEL" not in repr(tok) and "SENTINEL" not in str(tok)
