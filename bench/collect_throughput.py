"""Collection throughput: the Ray Data pipeline vs the single-process client vs a sequential loop.

All three fetch the same daily bars from one unthrottled simulator (its own process) and write
the same Parquet store layout, in one run, so their ratio is meaningful on a noisy machine.

    .venv/bin/python -m bench.collect_throughput --symbols 400 --start 2016-01-04 --today 2026-02-27
"""
from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path

from app.config import AppConfig
from app.collect.collect import CollectorActor, _collect_ray
from app.collect.collect_symbol import CollectSpec, collect_symbol
from app.collect.store import BarStore
from app.kis.client import KisClient
from app.kis.credentials import Credentials
from app.kis.settings import KisSettings
from app.sim.config import MarketConfig, SimConfig
from app.sim.runner import start_sim_process
from bench._common import PeakRss, emit


def spec_for(root: Path, start: str) -> CollectSpec:
    import datetime as dt

    return CollectSpec("D", dt.date.fromisoformat(start), None, True, "sim", str(root))


def count_bars(root: Path) -> int:
    store = BarStore(root)
    return sum(store.read("D", s).num_rows for s in store.symbols("D"))


async def sequential(settings, creds, symbols, spec) -> None:
    """One request in flight at a time: the loop a first script would write."""
    async with KisClient(settings, creds) as client:
        store = BarStore(spec.store_root)
        for s in symbols:
            await collect_symbol(client, store, s, spec)


def single_process(settings, creds, symbols, spec) -> None:
    actor = CollectorActor(spec, settings, creds, None)
    try:
        actor({"symbol": symbols})
    finally:
        actor.close()


def ray_pipeline(settings, creds, symbols, spec, workers: int) -> None:
    cfg = AppConfig()
    cfg.collect.workers, cfg.collect.batch_size = workers, 16
    for _ in _collect_ray(cfg, symbols, spec, settings, creds, None):
        pass


def timed(name: str, fn, root: Path) -> dict:
    with PeakRss() as rss:
        t0 = time.perf_counter()
        fn()
        secs = time.perf_counter() - t0
    bars = count_bars(root)
    return {"variant": name, "bars": bars, "seconds": round(secs, 2), "bars_per_s": round(bars / secs),
            "peak_rss_gib_tree": rss.gib}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=400)
    ap.add_argument("--start", default="2016-01-04")
    ap.add_argument("--today", default="2026-02-27")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sequential-symbols", type=int, default=40, help="the slow loop runs on a subset")
    args = ap.parse_args()

    creds = Credentials(secrets.token_hex(18), secrets.token_urlsafe(135)[:180])
    sim = SimConfig(rest_rate_limit=0, app_keys={creds.app_key: creds.app_secret},
                    market=MarketConfig(n_symbols=args.symbols, start=args.start, today=args.today))
    results = []
    with start_sim_process(sim) as handle:
        settings = KisSettings(base_url=handle.base_url, rate_limit=0, redis_url="", max_connections=32)
        symbols = list(handle_symbols(sim))
        with tempfile.TemporaryDirectory() as tmp:
            import ray

            ray.init(num_cpus=2, object_store_memory=1024**3, log_to_driver=False)
            ray_pipeline(settings, creds, symbols[:8], spec_for(Path(tmp) / "warm", args.start), args.workers)
            root = Path(tmp) / "ray"
            results.append(timed(f"ray_data_{args.workers}_actors",
                                 lambda: ray_pipeline(settings, creds, symbols, spec_for(root, args.start),
                                                      args.workers), root))
            ray.shutdown()
            root = Path(tmp) / "single"
            results.append(timed("single_process_client",
                                 lambda: single_process(settings, creds, symbols, spec_for(root, args.start)), root))
            root = Path(tmp) / "seq"
            sub = symbols[: args.sequential_symbols]
            results.append(timed("sequential_loop",
                                 lambda: asyncio.run(sequential(settings, creds, sub, spec_for(root, args.start))),
                                 root))
    base = {r["variant"]: r["bars_per_s"] for r in results}
    emit({"benchmark": "collect_throughput", "symbols": args.symbols, "results": results,
          "ratios": {"ray_vs_single": round(results[0]["bars_per_s"] / base["single_process_client"], 2),
                     "ray_vs_sequential": round(results[0]["bars_per_s"] / base["sequential_loop"], 2)}})


def handle_symbols(sim: SimConfig) -> list[str]:
    from app.sim.market import Market

    return Market(sim.market).symbols


if __name__ == "__main__":
    main()
