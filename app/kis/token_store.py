"""Where access tokens are shared between processes, and who may issue the next one.

Entries are keyed by :meth:`Credentials.key_id` (a hash of the app key), hold the token and its
expiry as JSON, never the app secret. ``claim(interval)`` is the cross-process issuance lock:
it succeeds for one caller per ``interval`` and otherwise says how long to wait.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import platformdirs
import redis.asyncio as aioredis

from app.errors import ServiceError
from app.kis.redis_conn import REDIS_ERRORS

APP_DIR_NAME = "kis-client"


class TokenStore(Protocol):
    async def load(self) -> str | None: ...

    async def save(self, text: str, ttl_s: float) -> None: ...

    async def discard(self, access_token: str) -> None: ...

    async def claim(self, interval_s: float) -> float: ...


def default_token_dir() -> Path:
    return platformdirs.user_cache_path(APP_DIR_NAME) / "tokens"


def _same_token(text: str | None, access_token: str) -> bool:
    try:
        return bool(text) and json.loads(text).get("access_token") == access_token
    except ValueError:
        return False


class FileTokenStore:
    """A 0600 JSON file per key under the user cache dir; ``flock`` serialises processes."""

    def __init__(self, key_id: str, directory: str | Path | None = None) -> None:
        self.dir = Path(directory) if directory else default_token_dir()
        self.path = self.dir / f"{key_id}.json"
        self._lock_path = self.dir / f"{key_id}.lock"
        self._claim_path = self.dir / f"{key_id}.claim"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self, path: Path) -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None

    def _write(self, path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)

    async def load(self) -> str | None:
        return await asyncio.to_thread(self._read, self.path)

    async def save(self, text: str, ttl_s: float) -> None:
        def run() -> None:
            with self._locked():
                self._write(self.path, text)

        await asyncio.to_thread(run)

    async def discard(self, access_token: str) -> None:
        def run() -> None:
            with self._locked():
                if _same_token(self._read(self.path), access_token):
                    self.path.unlink(missing_ok=True)

        await asyncio.to_thread(run)

    async def claim(self, interval_s: float) -> float:
        def run() -> float:
            with self._locked():
                now = time.time()
                try:
                    last = float(self._read(self._claim_path) or 0.0)
                except ValueError:
                    last = 0.0
                wait = last + interval_s - now
                if wait > 0 and last <= now:
                    return wait
                self._write(self._claim_path, repr(now))
                return 0.0

        return await asyncio.to_thread(run)


_DISCARD_LUA = """
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['access_token'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    """Token under ``<prefix>tok:<key_id>`` with a TTL to its expiry; the claim is a
    ``SET NX PX`` key that lives for the issuance interval."""

    def __init__(self, client: aioredis.Redis, key_id: str, prefix: str = "kis:") -> None:
        self._redis = client
        self._key = f"{prefix}tok:{key_id}"
        self._claim_key = f"{self._key}:claim"
        self._member = uuid.uuid4().hex
        self._discard = client.register_script(_DISCARD_LUA)

    async def _run(self, coro):
        try:
            return await coro
        except REDIS_ERRORS as exc:
            raise ServiceError(
                f"Redis token store unreachable ({type(exc).__name__})",
                "start Redis or unset REDIS_URL to keep tokens in a local file",
            ) from None

    async def load(self) -> str | None:
        return await self._run(self._redis.get(self._key))

    async def save(self, text: str, ttl_s: float) -> None:
        await self._run(self._redis.set(self._key, text, px=max(1000, int(ttl_s * 1000))))

    async def discard(self, access_token: str) -> None:
        await self._run(self._discard(keys=[self._key], args=[access_token]))

    async def claim(self, interval_s: float) -> float:
        px = max(1, int(interval_s * 1000))
        if await self._run(self._redis.set(self._claim_key, self._member, nx=True, px=px)):
            return 0.0
        left = await self._run(self._redis.pttl(self._claim_key))
        return max(left, 1) / 1000.0
