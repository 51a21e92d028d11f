"""``python -m app.sim``: run the simulator in the foreground; prints ``listening on URL`` once bound."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from app.errors import AppError
from app.sim.config import SimConfig, sim_config_from_dict


def parse_args(argv: list[str] | None = None) -> SimConfig:
    p = argparse.ArgumentParser(prog="python -m app.sim", description="KIS-compatible simulator on localhost")
    p.add_argument("--config-json", help="a whole SimConfig as JSON; the flags below override it")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--seed", type=int, help="market seed")
    p.add_argument("--n-symbols", type=int)
    p.add_argument("--env", choices=["real", "paper"])
    p.add_argument("--rate-limit", type=float, help="requests/s per app key; 0 = unlimited")
    p.add_argument("--today", help="YYYY-MM-DD: the server's today")
    a = p.parse_args(argv)
    data = json.loads(a.config_json) if a.config_json else {}
    market = data.setdefault("market", {})
    for key, value in (("host", a.host), ("port", a.port), ("env", a.env), ("rest_rate_limit", a.rate_limit)):
        if value is not None:
            data[key] = value
    for key, value in (("seed", a.seed), ("n_symbols", a.n_symbols), ("today", a.today)):
        if value is not None:
            market[key] = value
    return sim_config_from_dict(data)


async def _main(cfg: SimConfig) -> None:
    from app.sim.runner import bound_url, serve

    runner = await serve(cfg)
    print(f"listening on {bound_url(runner, cfg.host)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = parse_args(argv)
        asyncio.run(_main(cfg))
    except AppError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
