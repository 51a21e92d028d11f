"""Which symbols a run collects: ``data.symbols``, or every listed stock of the source.

``data.universe=all`` reads the KOSPI/KOSDAQ master files (docs/kis.md §4(e)): from
``data.master_dir`` when a local copy is there, else downloaded from the source (the simulator
serves them at KIS's paths; for real KIS they come from KIS's public download host).
"""
from __future__ import annotations

import logging
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from app.contracts import normalize_symbols
from app.errors import ConfigError, ServiceError
from app.kis.master import MASTER_PATHS, Listing, parse_master_zip, stock_universe

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)


def _master_bytes(market: str, master_dir: str | None, host: str) -> bytes:
    name = Path(MASTER_PATHS[market]).name
    if master_dir and (Path(master_dir) / name).exists():
        return (Path(master_dir) / name).read_bytes()
    url = host.rstrip("/") + MASTER_PATHS[market]
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - fixed KIS/simulator URL
            return resp.read()
    except OSError as exc:
        raise ServiceError(
            f"cannot download the {market} master file from {host} ({type(exc).__name__})",
            f"put {name} in a folder and set data.master_dir=/abs/path/to/it",
        ) from None


def listings(master_dir: str | None, host: str) -> list[Listing]:
    out: list[Listing] = []
    for market in MASTER_PATHS:
        out.extend(parse_master_zip(_master_bytes(market, master_dir, host), market))
    return out


def resolve_symbols(cfg: AppConfig, master_host: str) -> list[str]:
    """The run's symbols in a stable order, ``data.limit`` applied."""
    data = cfg.data
    if data.symbols:
        symbols = normalize_symbols(cfg.data.symbols)
    elif data.universe == "all":
        symbols = stock_universe(listings(data.master_dir, master_host))
        log.info("universe: %d listed stocks", len(symbols))
    elif data.universe:
        raise ConfigError(f"data.universe={data.universe!r} is unknown", "use data.universe=all or data.symbols=[...]")
    else:
        raise ConfigError("no symbols to collect", "set data.symbols=[005930,000660] or data.universe=all")
    return symbols[: data.limit] if data.limit else symbols
