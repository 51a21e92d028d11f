"""KRX trading costs of a list of orders: commission, dated sell tax, tick slippage.

* commission: ``commission_rate`` × traded value, both sides;
* sell tax: every sell (closing a long *or* opening a short: both transfer shares) pays the rate
  in force on its **settlement** date (trade + ``settlement_lag`` sessions), which is how the
  decree applies a new rate (a sale on 2024-12-27 settled in 2025 paid the 2025 rate);
* slippage: ``slippage_ticks`` ticks of the KRX grid at the execution price, per share traded.

Tick sizes come from the shared KRX table (``app.krx.ticks``, docs/kis.md §7). Bars do not say
whether a symbol is KOSPI or KOSDAQ, so before 2023-01-25 (when the tables differed) the KOSPI
table is used; since then both markets share one grid.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.evaluate.config import CostConfig, TaxRate
from app.krx import ticks


def tick_size(price: np.ndarray | float, day: dt.date) -> np.ndarray:
    """KRX tick of each price on ``day`` (KOSPI table before the 2023-01-25 unification)."""
    return ticks.tick_size(np.asarray(price, dtype=np.float64), ticks.table(day, kosdaq=False))


def tax_rate(day: dt.date, table: list[TaxRate]) -> float:
    """The sell tax in force for a transfer settled on ``day`` (0 before the first entry)."""
    rate = 0.0
    for entry in table:
        if dt.date.fromisoformat(entry.start) <= day:
            rate = entry.rate
    return rate


def settlement_day(trade_day: dt.date, sessions: np.ndarray, lag: int) -> dt.date:
    """The ``lag``-th session after ``trade_day``; past the known sessions, weekdays stand in."""
    days = np.asarray(sessions, dtype="datetime64[D]")
    pos = int(np.searchsorted(days, np.datetime64(trade_day, "D"), side="right")) - 1 + lag
    if 0 <= pos < days.size and lag > 0:
        return days[pos].astype(dt.date)
    return np.busday_offset(np.datetime64(trade_day, "D"), lag, roll="forward").astype(dt.date)


@dataclass
class TradeCosts:
    """KRW per order (arrays aligned with the orders)."""

    commission: np.ndarray
    tax: np.ndarray
    slippage: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.commission + self.tax + self.slippage


def order_costs(shares: np.ndarray, price: np.ndarray, trade_day: dt.date, settle_day: dt.date,
                cfg: CostConfig) -> TradeCosts:
    """Costs of signed share orders (+ buy, − sell) filled at ``price`` on ``trade_day``."""
    shares = np.asarray(shares, dtype=np.float64)
    price = np.where(shares != 0, np.asarray(price, dtype=np.float64), 0.0)
    value = np.abs(shares) * price
    tick = np.where(shares != 0, tick_size(np.where(shares != 0, price, 1.0), trade_day), 0.0)
    return TradeCosts(
        commission=cfg.commission_rate * value,
        tax=np.where(shares < 0, tax_rate(settle_day, cfg.sell_tax) * value, 0.0),
        slippage=cfg.slippage_ticks * tick * np.abs(shares),
    )


def trade_list_costs(trades: pd.DataFrame, sessions: np.ndarray, cfg: CostConfig) -> pd.DataFrame:
    """``trades`` (columns ``day``, ``shares``, ``price``) with commission, tax, slippage and total added."""
    out = trades.copy()
    parts = []
    for day, group in out.groupby("day", sort=True):
        day = pd.Timestamp(day).date()
        settle = settlement_day(day, sessions, cfg.settlement_lag)
        c = order_costs(group["shares"].to_numpy(), group["price"].to_numpy(), day, settle, cfg)
        parts.append(pd.DataFrame({"commission": c.commission, "tax": c.tax, "slippage": c.slippage},
                                  index=group.index))
    costs = pd.concat(parts) if parts else pd.DataFrame(columns=["commission", "tax", "slippage"], dtype=float)
    out[["commission", "tax", "slippage"]] = costs.reindex(out.index)
    out["total"] = out[["commission", "tax", "slippage"]].sum(axis=1)
    return out


def limit_blocks(price: np.ndarray, prev_close: np.ndarray, day: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """(buy blocked, sell blocked): a fill at the upper (lower) daily limit of ±30% of the previous close.

    A stock locked at its upper limit has no sellers, one at its lower limit no buyers, so a
    backtest that fills there trades at a price nobody could get. With adjusted bars the limit
    is computed on adjusted closes: exact for unadjusted data, close enough otherwise.
    """
    price = np.asarray(price, dtype=np.float64)
    prev = np.asarray(prev_close, dtype=np.float64)
    ok = np.isfinite(price) & np.isfinite(prev)
    upper, lower = ticks.limits(np.where(ok, prev, 1.0), ticks.table(day, kosdaq=False))
    return ok & (price >= upper), ok & (price <= lower)
