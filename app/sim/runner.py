"""Running the simulator: in a background thread (tests) or as a ``python -m app.sim`` subprocess."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable

from aiohttp import web

from app.errors import ServiceError
from app.sim.config import SimConfig

log = logging.getLogger(__name__)
STARTUP_TIMEOUT_S = 60.0


class SimHandle:
    """A running simulator: its URL, counters, and how to stop it (also a context manager)."""

    def __init__(self, base_url: str, stopper: Callable[[], None]):
        self.base_url = base_url
        self.port = int(base_url.rsplit(":", 1)[1])
        self._stopper = stopper
        self._stopped = False

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.base_url}/sim/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def reset_stats(self) -> None:
        req = urllib.request.Request(f"{self.base_url}/sim/reset-stats", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def drop_websockets(self) -> int:
        """Cut every open websocket connection now (the clients see an abnormal close)."""
        req = urllib.request.Request(f"{self.base_url}/sim/ws/drop", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(json.loads(resp.read())["dropped"])

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._stopper()

    def __enter__(self) -> "SimHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SimHandle({self.base_url})"


async def serve(cfg: SimConfig) -> web.AppRunner:
    """Start the app on cfg.host:cfg.port; returns the runner (its site knows the bound port)."""
    from app.sim.server import create_app

    runner = web.AppRunner(create_app(cfg), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port, backlog=1024)
    await site.start()
    log.info("KIS simulator listening on %s (limit %s/s per app key)", bound_url(runner, cfg.host),
             cfg.effective_rate_limit() or "no")
    return runner


def bound_url(runner: web.AppRunner, host: str) -> str:
    port = runner.addresses[0][1]
    return f"http://{host}:{port}"


def start_sim_thread(cfg: SimConfig) -> SimHandle:
    """The server on its own event loop in a daemon thread; returns once it listens."""
    ready = threading.Event()
    box: dict = {}
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            box["runner"] = loop.run_until_complete(serve(cfg))
        except BaseException as e:  # surfaced to the caller below
            box["error"] = e
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(box["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="kis-sim", daemon=True)
    thread.start()
    ready.wait(STARTUP_TIMEOUT_S)
    if "error" in box:
        raise box["error"]
    if "runner" not in box:
        raise ServiceError("the simulator did not start in time", "check the log for errors")

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)

    return SimHandle(bound_url(box["runner"], cfg.host), stop)


def start_sim_process(cfg: SimConfig) -> SimHandle:
    """``python -m app.sim`` in a child process (its own GIL); returns once it prints its URL."""
    cmd = [sys.executable, "-m", "app.sim", "--config-json", cfg.to_json()]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # the child imports the same app as this process, whatever its current directory (a Ray job's driver
    # runs from the storage root, not from the project)
    code_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (code_root, os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    url = None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("listening on "):
            url = line.split("listening on ", 1)[1].strip()
            break
    if url is None:
        proc.kill()
        proc.wait(timeout=10)
        raise ServiceError("the simulator process did not start", "run `python -m app.sim` by hand to see why")

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()

    return SimHandle(url, stop)
