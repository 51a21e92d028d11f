"""Configuration of the simulator: plain dataclasses, JSON round-trip, validation.

Kept free of Hydra so ``python -m app.sim`` and the test fixtures can build a config without
the pipeline's schema; :func:`sim_config_from_dict` is how the CLI's ``--config-json`` arrives.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from app.errors import ConfigError


@dataclass
class FaultConfig:
    """Injected faults; each probability is drawn per quotation request from its own seeded RNG."""

    seed: int = 0
    spurious_rate_limit: float = 0.0  # EGW00201 (HTTP 500) although under the limit
    server_error_html: float = 0.0  # HTTP 502/503 with an HTML body
    slow: float = 0.0  # answer after slow_seconds
    slow_seconds: float = 2.0
    drop: float = 0.0  # close the connection without an answer
    malformed_json: float = 0.0  # HTTP 200 with a truncated JSON body
    ws_drop_after_frames: int | None = None  # drop each websocket connection after it sent N data frames
    token_expire_after: int | None = None  # a token expires after N authorised requests (EGW00123)
    # quotations of these codes always answer HTTP 503 (a backend that stays down for some symbols)
    fail_symbols: list[str] = field(default_factory=list)


@dataclass
class MarketConfig:
    """The synthetic market; every number here has a documented meaning in docs/simulator.md."""

    seed: int = 7
    n_symbols: int = 50
    start: str = "2016-01-04"  # first session of history
    today: str | None = None  # the server's "today" (snapped to a session on/before it)
    now: str | None = None  # "HHMMSS" wall clock of today; None = after the close
    signal_strength: float = 0.1  # sd of the predictable part / sd of the idiosyncratic noise
    nonlinear_strength: float = 0.0  # weight of (x_t^2 - 1)/sqrt(2) in the signal: what a linear model misses
    n_sectors: int = 5  # sector factors (one per stock) besides the market factor
    factor_persistence: float = 0.05  # AR(1) coefficient of the factor returns
    volume_persistence: float = 0.9  # AR(1) coefficient of the volume-revealed signal
    market_vol: float = 0.010  # daily vol of the market factor (long-run level)
    sector_vol: float = 0.006  # daily vol of each sector factor
    vol_of_vol: float = 0.3  # stationary sd of the factors' log-volatility ...
    vol_persistence: float = 0.98  # ... and its daily AR(1) coefficient
    idio_vol_min: float = 0.012  # per-stock idiosyncratic daily vol, uniform in [min, max]
    idio_vol_max: float = 0.028
    jump_prob: float = 0.002  # daily probability of an idiosyncratic jump (news); can hit the ±30% limit
    jump_vol: float = 0.12  # sd of the log jump
    split_fraction: float = 0.1  # share of symbols with one stock split in their history
    kosdaq_fraction: float = 0.4  # share of symbols listed on KOSDAQ (the rest on KOSPI)


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port
    env: str = "real"  # real | paper: picks the default REST limit
    rest_rate_limit: float | None = None  # per sliding 1 s per app key; None = 18 real / 1 paper; 0 = none
    token_interval_s: float = 60.0  # min seconds between token answers per app key (else EGW00133)
    token_reuse_s: float = 21600.0  # re-issue within this returns the same token
    token_lifetime_s: float = 86400.0
    approval_interval_s: float = 1.0
    app_keys: dict[str, str] = field(default_factory=dict)  # appkey -> appsecret; empty = any pair
    ws_replay_speed: float = 60.0  # websocket: simulated seconds of today's session per real second
    ws_ping_interval_s: float = 100.0  # websocket: seconds between PINGPONG frames
    ws_max_subscriptions: int = 41  # websocket: registrations per session (then OPSP0008)
    faults: FaultConfig = field(default_factory=FaultConfig)
    market: MarketConfig = field(default_factory=MarketConfig)

    def effective_rate_limit(self) -> float:
        """Requests per second per app key; 0 means unlimited."""
        if self.rest_rate_limit is not None:
            return float(self.rest_rate_limit)
        return 18.0 if self.env == "real" else 1.0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown simulator config key(s) {unknown} in {where}", f"use only {sorted(names)}")
    return cls(**data)


def sim_config_from_dict(data: dict[str, Any]) -> SimConfig:
    """A validated :class:`SimConfig` from a plain (JSON) dict; nested dicts become sub-configs."""
    data = dict(data)
    faults = _build(FaultConfig, dict(data.pop("faults", {}) or {}), "faults")
    market = _build(MarketConfig, dict(data.pop("market", {}) or {}), "market")
    cfg = _build(SimConfig, data, "sim config")
    cfg.faults, cfg.market = faults, market
    validate(cfg)
    return cfg


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"faults.{name}={value} is not a probability", "use a value in [0, 1]")


def _check_date(name: str, value: str | None) -> None:
    if value is None:
        return
    try:
        dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ConfigError(f"market.{name}={value!r} is not a date", "use YYYY-MM-DD") from None


def validate(cfg: SimConfig) -> SimConfig:
    """Reject values the simulator cannot honour, with the fix in the message."""
    if cfg.env not in ("real", "paper"):
        raise ConfigError(f"sim env={cfg.env!r} is unknown", "use real or paper")
    if cfg.ws_replay_speed <= 0 or cfg.ws_ping_interval_s <= 0 or cfg.ws_max_subscriptions < 1:
        raise ConfigError("ws_replay_speed, ws_ping_interval_s and ws_max_subscriptions must be positive",
                          "e.g. 60, 100 and 41")
    if cfg.rest_rate_limit is not None and cfg.rest_rate_limit < 0:
        raise ConfigError(f"rest_rate_limit={cfg.rest_rate_limit} is negative", "use 0 (unlimited) or a positive rate")
    for name in ("spurious_rate_limit", "server_error_html", "slow", "drop", "malformed_json"):
        _check_prob(name, getattr(cfg.faults, name))
    if cfg.faults.token_expire_after is not None and cfg.faults.token_expire_after < 1:
        raise ConfigError("faults.token_expire_after must be >= 1", "use null to disable it")
    if cfg.faults.ws_drop_after_frames is not None and cfg.faults.ws_drop_after_frames < 1:
        raise ConfigError("faults.ws_drop_after_frames must be >= 1", "use null to disable it")
    m = cfg.market
    _check_date("start", m.start)
    _check_date("today", m.today)
    if m.now is not None and not (len(m.now) == 6 and m.now.isdigit() and m.now <= "235959"):
        raise ConfigError(f"market.now={m.now!r} is not HHMMSS", "use e.g. 103000, or null for after the close")
    if not 1 <= m.n_symbols <= 5000:
        raise ConfigError(f"market.n_symbols={m.n_symbols} is out of range", "use 1..5000")
    if not 0.0 <= m.nonlinear_strength <= 2.0:
        raise ConfigError(f"market.nonlinear_strength={m.nonlinear_strength} is out of range", "use 0..2")
    if not 0.0 <= m.signal_strength <= 0.9:
        raise ConfigError(f"market.signal_strength={m.signal_strength} is out of range", "use 0..0.9 (0.1 is realistic)")
    if not (0 < m.idio_vol_min <= m.idio_vol_max < 0.1):
        raise ConfigError("market.idio_vol_min/max must satisfy 0 < min <= max < 0.1", "e.g. 0.012 and 0.028")
    if not (0.0 <= m.jump_prob <= 0.1 and 0.0 <= m.jump_vol <= 0.5):
        raise ConfigError("market.jump_prob must be in [0, 0.1] and jump_vol in [0, 0.5]", "e.g. 0.002 and 0.12")
    for name in ("factor_persistence", "volume_persistence", "vol_persistence"):
        if not 0.0 <= getattr(m, name) < 1.0:
            raise ConfigError(f"market.{name} must be in [0, 1)", "e.g. 0.9")
    return cfg
