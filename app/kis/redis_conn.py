"""One way to open Redis for this package: short timeouts and no silent retries, so that a dead
Redis is noticed at once and the callers can fall back."""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.errors import ConfigError
from app.kis.redact import register_secret

ENV_REDIS_URL = "REDIS_URL"
#: What a lost Redis raises (socket errors may surface bare from asyncio).
REDIS_ERRORS = (RedisError, OSError, ConnectionError, TimeoutError)


def redis_url(configured: str | None) -> str | None:
    """The configured URL, else ``REDIS_URL``; empty means "no Redis"."""
    url = configured if configured is not None else os.environ.get(ENV_REDIS_URL)
    return url or None


def without_password(url: str) -> str:
    """``url`` with its password removed (the user name stays): what may travel to other processes."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


def on_this_node(url: str) -> str:
    """The URL with the password this node holds: its ``REDIS_URL`` when that names the same server
    and database, else ``url`` as given. Actors and tasks get only password-free URLs (Ray keeps
    their arguments to restart them) and read the password where they run, as they do credentials."""
    if not url or urlsplit(url).password:
        return url
    local = os.environ.get(ENV_REDIS_URL, "")
    return local if local and without_password(local) == url else url


def connect(url: str, timeout_s: float = 2.0) -> aioredis.Redis:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"REDIS_URL has scheme {parts.scheme!r}", "use redis://host:port/db or rediss://..."
        )
    register_secret(parts.password)
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
