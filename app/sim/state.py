"""The simulator's per-app state (market, limits, auth, faults, websocket sessions), kept apart
from the HTTP handlers so that the REST server and the websocket handler both read it without
importing each other."""
from __future__ import annotations

import itertools
import secrets

from aiohttp import web

from app.sim.auth import AuthState
from app.sim.config import SimConfig
from app.sim.faults import FaultInjector
from app.sim.limits import SlidingWindow, Stats
from app.sim.market import Market
from app.sim.quotations import Quotations
from app.sim.tape import Tape


class SimState:
    def __init__(self, cfg: SimConfig, market: Market | None = None):
        self.cfg = cfg
        self.market = market or Market(cfg.market)
        self.stats = Stats()
        self.auth = AuthState(cfg)
        self.window = SlidingWindow(cfg.effective_rate_limit(), self.stats)
        self.faults = FaultInjector(cfg.faults)
        self.quotations = Quotations(self.market)
        self.tape = Tape(self.market)
        self.ws_owners: dict = {}  # app key -> its one websocket session
        self.ws_sessions: set = set()  # every open websocket session
        self._replay_origin: tuple[float, int] | None = None
        self._gt = itertools.count(1)
        self._gt_prefix = secrets.token_hex(5).upper()

    def replay_origin(self, now_real: float, start_sim: int) -> tuple[float, int]:
        """The websocket replay clock: (loop time, simulated second) fixed by the first subscription,
        so that every session and every reconnect sees the same market time."""
        if self._replay_origin is None:
            self._replay_origin = (now_real, start_sim)
        return self._replay_origin

    def gt_uid(self) -> str:
        return f"{self._gt_prefix}{next(self._gt):022d}"


STATE = web.AppKey("sim_state", SimState)
