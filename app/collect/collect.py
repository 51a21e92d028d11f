"""Stage ``collect``: bars of every symbol into the Parquet store, in parallel with Ray Data.

The symbol list becomes a Ray Dataset; a pool of callable-class actors (``ActorPoolStrategy``)
each hold one KIS client (one aiohttp session) and fetch a batch of symbols concurrently, writing
each symbol's partition themselves. All actors pace through ONE per-app-key limiter in Redis, so
together they stay under KIS's limit. ``collect.workers=0`` runs the same per-symbol code in this
process without Ray. A run writes ``data_manifest.json`` into its run folder.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from app import storage
from app.contracts import parse_date
from app.collect.bar_source import bar_source
from app.collect.collect_symbol import CollectSpec, SymbolOutcome, collect_symbol
from app.collect.collect_stats import CollectTally
from app.collect.hot_cache import HotCache
from app.collect.sources import ApiSource, resolve_source
from app.collect.store import BarStore
from app.collect.universe import resolve_symbols
from app.errors import DataError, IncompleteDataError, ServiceError
from app.kis.credentials import Credentials
from app.kis.redis_conn import ENV_REDIS_URL, on_this_node, without_password
from app.kis.settings import KisSettings
from app.progress import ProgressLine
from app.run_folder import DATA_MANIFEST, RunFolder

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)


def redis_url_of(cfg: AppConfig) -> str:
    """REDIS_URL (may carry a password) wins over ``redis.url``; "" means no Redis."""
    return os.environ.get(ENV_REDIS_URL) or cfg.redis.url or ""


def uses_actors(cfg: AppConfig, n_symbols: int | None) -> bool:
    """Whether an API collection fans out to Ray actors (``n_symbols`` None: not known yet, as for a
    universe): with ``collect.workers`` set and more than one symbol; else it runs in this process."""
    return bool(cfg.collect.workers) and (n_symbols is None or n_symbols > 1)


def reachable_redis(url: str) -> str:
    """``url`` if a Redis answers there, else "" after one warning (file tokens, local pacing)."""
    if not url:
        return ""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        return url
    except (redis.RedisError, OSError) as exc:
        log.warning(
            "Redis unreachable (%s): tokens go to the file store and pacing is per process; "
            "start Redis or set REDIS_URL to share them", type(exc).__name__)
        return ""


def kis_settings(cfg: AppConfig, api: ApiSource, redis_url: str) -> KisSettings:
    k = cfg.kis
    rate = api.rate_limit if api.name == "sim" and k.rate_limit is None else k.rate_limit
    return KisSettings(
        env=k.env, base_url=api.base_url or k.base_url, rate_limit=rate, rate_margin=k.rate_margin,
        redis_url=redis_url, key_prefix=f"{cfg.redis.key_prefix}:kis:", timeout_s=k.timeout_s,
        retry_attempts=k.retry_attempts, retry_base_s=k.retry_base_s, retry_cap_s=k.retry_cap_s,
        retry_budget_s=k.retry_budget_s,
        max_connections=k.max_connections, token_refresh_before_s=k.token_refresh_before_s,
        token_interval_s=k.token_interval_s, token_dir=k.token_dir, market=cfg.data.market, custtype=k.custtype,
        ws_url=k.ws_url,
    )


def preflight(settings: KisSettings, credentials: Credentials | None) -> None:
    """Get (or reuse) the access token once before fanning out: wrong credentials or an unreachable
    server then fail the run in one line instead of failing every symbol; the token lands in the
    shared store, so the actors reuse it instead of issuing their own."""
    from app.kis.client import KisClient
    from app.kis.errors import KisError

    async def token() -> None:
        async with KisClient(settings, credentials) as client:
            await client.access_token()

    try:
        asyncio.run(token())
    except KisError as exc:
        if exc.msg_cd:
            raise
        raise ServiceError(f"cannot reach the KIS server at {settings.url} ({exc.message})",
                           "check kis.base_url / kis.env and the network, then re-run") from None


class CollectorActor:
    """One KIS client per actor, reused across batches; a batch's symbols are fetched concurrently.

    ``credentials`` is None for real KIS: each actor reads them on its own node (environment or
    ``KIS_CREDENTIALS_FILE``), since Ray keeps constructor arguments to restart an actor. Only the
    simulator's throwaway pair, made for this run and void when it ends, travels as an argument.
    The Redis URLs arrive without a password (:func:`actor_arguments`); the actor adds the one its
    node's ``REDIS_URL`` holds.
    Ray Data restarts a lost actor and retries its batch (``max_restarts``/``max_task_retries`` -1);
    a retried symbol is merged again, which stores each bar once (:func:`collect_symbol`).
    """

    def __init__(self, spec: CollectSpec, settings: KisSettings, credentials: Credentials | None,
                 hot: tuple[str, str, int] | None) -> None:
        from app.kis.client import KisClient

        self.loop = asyncio.new_event_loop()
        self.spec, self.store = spec, BarStore(spec.store_root)
        if settings.redis_url:
            settings = dataclasses.replace(settings, redis_url=on_this_node(settings.redis_url))
        self.client = KisClient(settings, credentials)
        self.hot = HotCache(on_this_node(hot[0]), *hot[1:]) if hot else None

    def __call__(self, batch: dict) -> dict:
        began = time.time()
        outcomes, stats = self.loop.run_until_complete(self._run(list(batch["symbol"])))
        rows = [o.as_row() for o in outcomes]
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        cols.update({k: [v if i == 0 else 0 for i in range(len(rows))] for k, v in stats.items()})
        # wall-clock span of this batch's work, so rates can exclude Ray's start-up
        cols["span_start"], cols["span_end"] = [began] * len(rows), [time.time()] * len(rows)
        return cols

    async def _run(self, symbols: list[str]) -> tuple[list[SymbolOutcome], dict[str, int]]:
        before = self.client.stats()
        latest = self.hot.get_latest_many(self.spec.freq, symbols) if self.hot else {}
        outcomes = await self.client.map_symbols(
            lambda s: collect_symbol(self.client, self.store, s, self.spec, latest.get(s)), symbols)
        if self.hot:  # only bars fetched now: a skipped bar keeps the time it was really fetched
            for o in outcomes:
                if o.status != "failed" and o.fetched:
                    self.hot.put_latest(self.spec.freq, o.symbol, self.store.read(self.spec.freq, o.symbol))
        after = self.client.stats()
        return outcomes, {f"api_{k}": after[k] - before.get(k, 0) for k in after}

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.run_until_complete(self.client.close())
            self.loop.close()

    def __del__(self) -> None:  # Ray Data calls this when it retires the actor
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to release
            pass


def _batches(symbols: list[str], size: int) -> Iterator[dict]:
    for i in range(0, len(symbols), size):
        yield {"symbol": symbols[i : i + size]}


def _collect_local(symbols: list[str], spec, settings, credentials, hot, batch_size: int) -> Iterator[dict]:
    """The same actor code, in this process: for ``collect.workers=0`` and tiny runs."""
    actor = CollectorActor(spec, settings, credentials, hot)
    try:
        for batch in _batches(symbols, batch_size):
            yield actor(batch)
    finally:
        actor.close()


def actor_count(cfg: AppConfig, n_symbols: int, limit: float, shared_limiter: bool) -> int:
    """Collection actors for this run. Actors are separate processes: without Redis they cannot
    share one limiter, and each would pace at the whole limit. One actor then holds it all; at
    KIS's 18 requests/s one actor is nowhere near busy, so nothing is lost but the CPU spread."""
    c = cfg.collect
    wanted = max(1, min(int(c.workers), -(-n_symbols // int(c.batch_size))))
    if wanted > 1 and limit > 0 and not shared_limiter:
        log.warning("no shared rate limiter (Redis): collecting with 1 actor at the whole %g requests/s "
                    "instead of %d actors; start Redis or set REDIS_URL to use collect.workers=%d",
                    limit, wanted, int(c.workers))
        return 1
    return wanted


def actor_arguments(spec: CollectSpec, settings: KisSettings, credentials: Credentials | None,
                    hot: tuple[str, str, int] | None) -> dict:
    """The collection actors' constructor arguments, Redis URLs without their password: Ray keeps
    these to restart an actor (and shows them in its state), so a secret must not be among them."""
    if settings.redis_url:
        settings = dataclasses.replace(settings, redis_url=without_password(settings.redis_url))
    hot = (without_password(hot[0]), *hot[1:]) if hot else None
    return {"spec": spec, "settings": settings, "credentials": credentials, "hot": hot}


def _collect_ray(cfg: AppConfig, symbols: list[str], workers: int, spec, settings, credentials,
                 hot) -> Iterator[dict]:
    import ray

    from app.ray_runtime import init_ray

    init_ray(cfg.ray, cfg.storage)
    if settings.redis_url and sum(1 for n in ray.nodes() if n.get("Alive")) > 1:
        from app.collect.redis_nodes import check_every_node

        check_every_node(settings.redis_url)  # the actors may run on any node: each must reach the limiter
    c = cfg.collect
    ds = ray.data.from_items([{"symbol": s} for s in symbols], override_num_blocks=max(1, len(symbols) // c.batch_size))
    ds = ds.map_batches(
        CollectorActor,
        fn_constructor_kwargs=actor_arguments(spec, settings, credentials, hot),
        batch_size=int(c.batch_size),
        batch_format="default",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=float(c.actor_cpus),
    )
    yield from ds.iter_batches(batch_size=None, batch_format="default")


def _spec(cfg: AppConfig, source: str, store_root: str) -> CollectSpec:
    d = cfg.data
    return CollectSpec(freq=d.freq, start=parse_date(d.start, "data.start"),
                       end=parse_date(d.end, "data.end") if d.end else None,
                       adjusted=bool(d.adjusted), source=source, store_root=str(store_root))


def _store_root(cfg: AppConfig) -> str:
    return storage.absolute(cfg.store.root)


@contextlib.contextmanager
def writing_store(root: str) -> Iterator[None]:
    """Mark the store as being written; a mark left by a cut-off run is cleaned up first. The mark
    goes only when the collection ends normally: after an error the actors may still be writing."""
    store = BarStore(root)
    if store.collecting():
        removed = store.recover()
        log.warning("the last collection into %s was interrupted: %d unfinished file(s) removed, manifest "
                    "rebuilt from the partitions; collecting what is missing", root, removed)
    store.mark_collecting(True)
    yield
    store.remove_temporaries()  # of an actor Ray restarted mid-write: its batch was redone
    store.mark_collecting(False)


def run(cfg: AppConfig, run_dir: Path) -> dict:
    """Collect every requested symbol from the configured source; returns (and saves) the run's
    data manifest."""
    source = bar_source(resolve_source(cfg))
    return _finish(source.collect(cfg, run_dir, _store_root(cfg)), run_dir)


def collect_api(cfg: AppConfig, api: ApiSource, root: str) -> dict:
    """Collect from an API that speaks KIS (the real one or the simulator); returns the manifest."""
    symbols = resolve_symbols(cfg, api.master_host)
    redis_url = reachable_redis(redis_url_of(cfg))
    settings = kis_settings(cfg, api, redis_url)
    spec = _spec(cfg, api.name, root)
    hot = (redis_url, cfg.redis.key_prefix, int(cfg.redis.hot_ttl_s)) if redis_url else None
    if not redis_url:
        log.warning("no Redis: the hot cache of latest bars is off")
    preflight(settings, api.credentials)
    tally = CollectTally(len(symbols), settings.limit)
    log.info("collecting %d symbol(s), freq %s, %s..%s into %s", len(symbols), spec.freq, spec.start,
             spec.end or "latest", root)
    if uses_actors(cfg, len(symbols)):
        workers = actor_count(cfg, len(symbols), settings.limit, shared_limiter=bool(redis_url))
        batches = _collect_ray(cfg, symbols, workers, spec, settings, api.credentials, hot)
    else:
        batches = _collect_local(symbols, spec, settings, api.credentials, hot, int(cfg.collect.batch_size))
    progress = ProgressLine(tally.line)
    with writing_store(root):  # from here on, actors write partitions
        for batch in batches:
            tally.add(batch)
            progress.update()
    progress.close()
    return tally.manifest(spec, BarStore(root), api)


def _finish(manifest: dict, run_dir: Path) -> dict:
    """Save the manifest; permanent failures are listed and the run goes on (see
    :func:`incomplete_error` for the transient ones)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    RunFolder(run_dir).write_json(DATA_MANIFEST, manifest)
    totals = manifest["totals"]
    log.info("collected: %s", CollectTally.summary(totals))
    transient = set(manifest.get("transient_failures", ()))
    for symbol, reason in manifest["failed"].items():
        if symbol in transient:
            log.error("missing %s (transient, a re-run may fetch it): %s", symbol, reason)
        else:
            log.warning("skipped %s: %s", symbol, reason)
    if totals["symbols_ok"] == 0 and not transient:
        raise DataError(f"no symbol could be collected ({len(manifest['failed'])} failed)",
                        "see the reasons above and in data_manifest.json")
    return manifest


def incomplete_error(manifest: object) -> IncompleteDataError | None:
    """The exit-3 error of a collection that left symbols missing for a transient reason."""
    if not isinstance(manifest, dict) or not manifest.get("transient_failures"):
        return None
    missing = list(manifest["transient_failures"])
    shown = "; ".join(f"{s} ({_short(manifest['failed'].get(s, ''))})" for s in missing[:5])
    more = f"; and {len(missing) - 5} more in data_manifest.json" if len(missing) > 5 else ""
    return IncompleteDataError(
        f"collection left {len(missing)} symbol(s) missing for a transient reason: {shown}{more}",
        "re-run the same command to fetch only what is missing, or set collect.allow_partial=true "
        "to run the later stages on the rest")


def _short(reason: str) -> str:
    """The cause of a KIS error line, without the request it was about."""
    return reason.split("; request ")[0].split("(fix:")[0].strip()
