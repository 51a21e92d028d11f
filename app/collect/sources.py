"""The APIs bars come from: the real KIS API, or the embedded simulator started for this run.

Both are reached over HTTP by the same client; the only differences are the base URL and where
the credentials come from (the environment for KIS, a throwaway pair for the simulator). The
sources by name are in :mod:`app.collect.bar_source`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.kis.credentials import Credentials, credentials_available
from app.kis.master import MASTER_HOST

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)


@dataclass
class ApiSource:
    name: str  # sim | kis
    base_url: str | None  # None = the KIS host of kis.env
    credentials: Credentials | None  # None = read from the environment (real KIS)
    master_host: str  # where data.universe=all downloads the master files
    rate_limit: float | None  # the limit the server enforces, when known
    handle: object | None = None  # the simulator's handle, for stats
    description: dict | None = None  # what market the bars are of (see describe_*), for reports


def resolve_source(cfg: AppConfig) -> str:
    """``auto`` means real KIS when credentials are in the environment, else the simulator."""
    source = cfg.data.source
    if source == "auto":
        source = "kis" if credentials_available() else "sim"
        log.info("data source: %s (%s)", source, "KIS credentials found" if source == "kis" else "no KIS credentials")
    return source


def sim_config(cfg: AppConfig, credentials: Credentials):
    """The embedded simulator's config, from ``data.sim``."""
    from app.sim.config import MarketConfig, SimConfig

    sim = cfg.data.sim
    market = MarketConfig(seed=sim.seed, n_symbols=sim.n_symbols, start=sim.start, today=sim.today)
    if sim.signal_strength is not None:
        market.signal_strength = float(sim.signal_strength)
    if sim.nonlinear_strength is not None:
        market.nonlinear_strength = float(sim.nonlinear_strength)
    return SimConfig(
        env=cfg.kis.env,
        rest_rate_limit=sim.rate_limit,
        token_lifetime_s=6 * 3600.0,
        app_keys={credentials.app_key: credentials.app_secret},
        market=market,
        faults=dataclasses.replace(sim.faults),  # the run's own copy: the simulator may change it
    )


def describe_sim(sim_cfg) -> dict:
    """The simulator's market, so that no report of it reads as one of real data."""
    m = sim_cfg.market
    label = (f"simulated KIS market (seed {m.seed}, {m.n_symbols} symbols, planted signal {m.signal_strength:g}, "
             f"non-linear {m.nonlinear_strength:g}); not real data")
    return {"kind": "sim", "label": label, "seed": m.seed, "n_symbols": m.n_symbols, "start": m.start,
            "today": m.today, "signal_strength": m.signal_strength, "nonlinear_strength": m.nonlinear_strength}


def describe_kis(env: str) -> dict:
    return {"kind": "kis", "env": env, "label": f"KIS Open API ({'real' if env == 'real' else 'paper'} account)"}


def describe_file(path: Path) -> dict:
    """A file by name and SHA-256, so a report names exactly the bars it is about."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    return {"kind": "file", "name": path.name, "path": str(path.resolve()), "sha256": sha,
            "label": f"file {path.name} (sha256 {sha[:12]})"}


@contextlib.contextmanager
def open_kis(cfg: AppConfig) -> Iterator[ApiSource]:
    """Real KIS, with the credentials of the environment (checked here, in one line)."""
    Credentials.from_env()
    yield ApiSource("kis", cfg.kis.base_url, None, MASTER_HOST, None, description=describe_kis(cfg.kis.env))


@contextlib.contextmanager
def open_sim(cfg: AppConfig) -> Iterator[ApiSource]:
    """The embedded simulator, started here with a throwaway key pair and stopped on exit."""
    from app.sim.runner import start_sim_process

    credentials = Credentials(secrets.token_hex(18), secrets.token_urlsafe(135)[:180])
    sim_cfg = sim_config(cfg, credentials)
    handle = start_sim_process(sim_cfg)
    log.info("embedded KIS simulator at %s (%d symbols, %s req/s)", handle.base_url, sim_cfg.market.n_symbols,
             sim_cfg.effective_rate_limit() or "unlimited")
    try:
        yield ApiSource("sim", handle.base_url, credentials, handle.base_url, sim_cfg.effective_rate_limit(), handle,
                        describe_sim(sim_cfg))
    finally:
        handle.stop()


def check_sim(cfg: AppConfig) -> None:
    """The embedded simulator's own checks, reported under ``data.sim.*`` before anything starts."""
    from app.errors import ConfigError
    from app.sim.config import validate as validate_sim

    try:
        validate_sim(sim_config(cfg, Credentials("config-check", "config-check")))
    except ConfigError as exc:
        raise ConfigError(f"data.sim: {exc.message}".replace("market.", "").replace("faults.", "faults."),
                          exc.hint) from None
