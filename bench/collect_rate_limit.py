"""Ray Data actors under one KIS rate limit: achieved ÷ allowed, rejections, bars stored.

The simulator enforces the limit over any sliding second at arrival; the figure that matters is
requests/s over the collection's wall time against the limit, with zero EGW00201 rejections.

    .venv/bin/python -m bench.collect_rate_limit --limit 18 --actors 4          # shared through Redis
    .venv/bin/python -m bench.collect_rate_limit --limit 18 --actors 2 --redis "" --symbols 24 --start 2021-12-01

Without Redis the run measures what the pipeline does (one actor holding the whole limit) and, as
its baseline in the same run, the same actors each pacing alone at the whole limit (the behaviour
before actors were reduced), which overruns the server.
"""
from __future__ import annotations

import argparse
import datetime as dt
import secrets
import tempfile
import time
import uuid
from pathlib import Path

from app.config import AppConfig
from app.collect.collect import _collect_ray, actor_count
from app.collect.collect_stats import CollectTally
from app.collect.collect_symbol import CollectSpec
from app.kis.credentials import Credentials
from app.kis.settings import KisSettings
from app.sim.config import MarketConfig, SimConfig
from app.sim.market import Market
from app.sim.runner import start_sim_process
from bench._common import emit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=float, default=18.0)
    ap.add_argument("--actors", type=int, default=4)
    ap.add_argument("--symbols", type=int, default=48)
    ap.add_argument("--start", default="2019-01-02")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()

    import ray

    creds = Credentials(secrets.token_hex(18), secrets.token_urlsafe(135)[:180])
    sim = SimConfig(rest_rate_limit=args.limit, app_keys={creds.app_key: creds.app_secret},
                    market=MarketConfig(n_symbols=args.symbols, start="2018-01-02", today="2024-12-30"))
    symbols = Market(sim.market).symbols
    ray.init(num_cpus=2, object_store_memory=512 * 1024**2, log_to_driver=False)
    cfg = AppConfig()
    cfg.collect.workers, cfg.collect.batch_size = args.actors, 2
    pipeline = actor_count(cfg, len(symbols), args.limit, shared_limiter=bool(args.redis))
    out = {"benchmark": "collect_rate_limit", "limit": args.limit, "redis": bool(args.redis),
           "symbols": len(symbols), "pipeline": collect(args, sim, creds, cfg, symbols, pipeline)}
    if not args.redis:  # baseline: every actor paces alone at the whole limit
        out["baseline_unshared"] = collect(args, sim, creds, cfg, symbols, args.actors)
    ray.shutdown()
    emit(out)


def collect(args, sim, creds, cfg, symbols: list[str], actors: int) -> dict:
    with start_sim_process(sim) as handle, tempfile.TemporaryDirectory() as tmp:
        settings = KisSettings(base_url=handle.base_url, rate_limit=args.limit, redis_url=args.redis,
                               key_prefix=f"bench-{uuid.uuid4().hex[:8]}:", token_dir=tmp)
        spec = CollectSpec("D", dt.date.fromisoformat(args.start), None, True, "sim", str(Path(tmp)))
        tally = CollectTally(len(symbols), args.limit)
        handle.reset_stats()
        for batch in _collect_ray(cfg, symbols, actors, spec, settings, creds, None):
            tally.add(batch)
        t = tally.totals()
        stats = handle.stats()
    expected = sum(Market(sim.market).daily_bars(s, spec.start, dt.date(2024, 12, 30)).num_rows for s in symbols)
    return {"actors": actors, "requests": t["requests"], "seconds": t["seconds"],
            "active_seconds": t["active_seconds"], "requests_per_s_active": t["requests_per_s_active"],
            "achieved_over_allowed": round(t["requests_per_s_active"] / args.limit, 3),
            "achieved_over_allowed_incl_startup": round(t["requests_per_s"] / args.limit, 3),
            "server_rejections": stats["rate_limited"], "max_in_any_1s_window": stats["max_in_window"],
            "symbols_failed": t["symbols"] - t["symbols_ok"], "bars_stored": t["rows_added"],
            "bars_expected": expected,
            "note": "active = from the first actor batch's start to the last one's end"}


if __name__ == "__main__":
    main()
