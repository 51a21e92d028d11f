"""A daily, share-based backtest: orders decided on a signal bar fill on the *next* bar.

Every rebalance carries the panel row of its signal and the row where it executes, and the
execution row is always the next one (``signal + 1``), at its open or close: the price the
signal saw is never traded. Between rebalances the book drifts with prices and is marked at the
close (the last close over a halt). A symbol without a bar on the execution day, or at its
daily limit in the direction of the order, keeps its shares. Costs and short borrow are paid in
cash; the final book is marked to market, not liquidated.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.contracts import KST_NAME
from app.evaluate.config import CostConfig, EvaluateConfig
from app.evaluate.costs import TradeCosts, limit_blocks, order_costs, settlement_day
from app.evaluate.panel import PricePanel


@dataclass
class Rebalance:
    signal: int  # panel row of the bar the prediction is known at
    weights: np.ndarray | None  # target weights of NAV; None = no ranking, keep the book

    @property
    def execute(self) -> int:
        return self.signal + 1


@dataclass
class BacktestResult:
    daily: pd.DataFrame  # ts, nav, ret, rebalance, turnover, commission, tax, slippage, borrow, gross, n_long, n_short
    trades: pd.DataFrame  # ts, signal_ts, symbol, shares, price, value, commission, tax, slippage
    skipped: int  # rebalances kept unchanged for lack of a ranking


@dataclass
class _Book:
    shares: np.ndarray
    cash: float

    def value(self, prices: np.ndarray) -> float:
        held = self.shares != 0
        return self.cash + float(np.sum(self.shares[held] * prices[held]))


def _targets(weights: np.ndarray, invest: float, px: np.ndarray, ref: np.ndarray, held: np.ndarray,
             blocked: tuple[np.ndarray, np.ndarray], whole: bool) -> np.ndarray:
    """Target shares; locked names (no bar, or at the limit against the order) keep their shares."""
    tradable = np.isfinite(px)
    want = held.copy()
    want[tradable] = weights[tradable] * invest / px[tradable]
    locked = ~tradable | ((want > held) & blocked[0]) | ((want < held) & blocked[1])
    want[locked] = held[locked]
    free = ~locked
    need = float(weights[free].sum()) * invest
    if (weights >= 0).all() and need > 0:  # long-only, no margin: money stuck in locked names is not available
        budget = max(invest - float(np.sum(held[locked] * ref[locked])), 0.0)
        want[free] *= min(1.0, budget / need)
    if whole:
        want[free] = np.trunc(want[free])
    return want


def _orders(book: _Book, weights: np.ndarray, px: np.ndarray, ref: np.ndarray, prev_close: np.ndarray,
            day: dt.date, settle: dt.date, cfg: EvaluateConfig, costs: CostConfig,
            frictionless: bool) -> tuple[np.ndarray, TradeCosts]:
    """Orders that reach the targets with what is left after paying their own costs."""
    nav = book.value(ref)
    none = np.zeros(px.size, dtype=bool)
    blocked = limit_blocks(px, prev_close, day) if cfg.price_limits and not frictionless else (none, none)
    fill = np.where(np.isfinite(px), px, 0.0)
    invest = max(nav, 0.0)  # a wiped-out book (possible with shorts) can only be closed
    for _ in range(2):  # costs shrink what can be invested; two passes settle it to well under a won
        orders = _targets(weights, invest, px, ref, book.shares, blocked, cfg.whole_shares and not frictionless) - book.shares
        paid = order_costs(orders, fill, day, settle, costs)
        invest = max(nav - float(paid.total.sum()), 0.0)
    return orders, paid


def rebalance_rows(signal_rows: np.ndarray, every: int, n_rows: int) -> np.ndarray:
    """Every ``every``-th signal row, keeping only those with a next bar to trade on."""
    rows = np.unique(np.asarray(signal_rows, dtype=np.int64))[::every]
    return rows[rows + 1 < n_rows]


def _day(ts: pd.Timestamp) -> dt.date:
    return ts.tz_convert(KST_NAME).date()


TRADE_COLUMNS = ["ts", "signal_ts", "symbol", "shares", "price", "value", "commission", "tax", "slippage"]


class _Simulation:
    """The book and the panel-derived arrays one backtest walks through, row by row."""

    def __init__(self, panel: PricePanel, cfg: EvaluateConfig, costs: CostConfig, frictionless: bool) -> None:
        self.panel, self.cfg, self.costs, self.frictionless = panel, cfg, costs, frictionless
        self.mark = panel.last_close()
        self.prev = np.vstack([np.full(len(panel.symbols), np.nan), self.mark[:-1]])
        self.px = panel.open if cfg.execution == "open" else panel.close
        self.days = panel.days
        self.book = _Book(np.zeros(len(panel.symbols)), cfg.capital)

    def execute(self, t: int, reb: Rebalance, rec: dict) -> pd.DataFrame:
        """Fill the rebalance at row ``t``; records turnover and costs in ``rec``; returns its trades."""
        book, px, day = self.book, self.px[t], _day(self.panel.ts[t])
        ref = np.where(np.isfinite(px), px, self.mark[t])
        nav = book.value(ref)
        settle = settlement_day(day, self.days, self.costs.settlement_lag)
        orders, paid = _orders(book, reb.weights, px, ref, self.prev[t], day, settle, self.cfg, self.costs,
                               self.frictionless)
        done = orders != 0
        value = orders[done] * px[done]
        book.shares = book.shares + orders
        book.cash -= float(value.sum()) + float(paid.total.sum())
        rec.update(rebalance=True, turnover=float(np.abs(value).sum()) / nav / 2 if nav > 0 else float("nan"), commission=float(paid.commission.sum()),
                   tax=float(paid.tax.sum()), slippage=float(paid.slippage.sum()))
        return pd.DataFrame({
            "ts": self.panel.ts[t], "signal_ts": self.panel.ts[reb.signal], "symbol": self.panel.symbols[done],
            "shares": orders[done], "price": px[done], "value": value, "commission": paid.commission[done],
            "tax": paid.tax[done], "slippage": paid.slippage[done]})

    def close(self, t: int, rec: dict, at_open: bool = False) -> float:
        """Charge a day of short borrow and mark the book at the close (or this bar's open); returns NAV."""
        book, mark = self.book, self.mark[t]
        if at_open:
            mark = np.where(np.isfinite(self.panel.open[t]), self.panel.open[t], mark)
        short = book.shares < 0
        rec["borrow"] = self.costs.borrow_rate_annual / self.cfg.periods_per_year * float(-np.sum(book.shares[short] * mark[short]))
        book.cash -= rec["borrow"]
        nav = book.value(mark)
        held = book.shares != 0
        rec.update(nav=nav, gross=float(np.abs(book.shares[held] * mark[held]).sum()) / nav,
                   n_long=int((book.shares > 0).sum()), n_short=int(short.sum()))
        return nav


def run_backtest(panel: PricePanel, rebalances: list[Rebalance], cfg: EvaluateConfig, costs: CostConfig,
                 *, frictionless: bool = False) -> BacktestResult:
    """Simulate the book from the first execution row to ``horizon`` bars after the last one.

    With fills at the open, the last row is marked at its open: the book is held from one open to
    the open ``horizon`` bars later, so the final overnight gap counts and that day's session does not.
    """
    n_rows = len(panel.ts)
    if not rebalances:
        return BacktestResult(pd.DataFrame(), pd.DataFrame(columns=TRADE_COLUMNS), 0)
    if any(r.execute <= r.signal or r.execute >= n_rows for r in rebalances):
        raise AssertionError("a rebalance would trade at or before its signal bar")
    sim = _Simulation(panel, cfg, costs, frictionless)
    by_row = {r.execute: r for r in rebalances}
    # the last book is held for ``horizon`` bars and marked where the next rebalance would trade:
    # the open (or the close) of the bar ``horizon`` rows after its execution
    end = min(n_rows - 1, rebalances[-1].execute + cfg.rebalance_every)
    final_at_open = cfg.execution == "open" and end == rebalances[-1].execute + cfg.rebalance_every
    rows, trades, skipped, nav_prev = [], [], 0, cfg.capital
    for t in range(rebalances[0].execute, end + 1):
        rec = {"ts": panel.ts[t], "rebalance": False, "turnover": 0.0, "commission": 0.0, "tax": 0.0, "slippage": 0.0}
        reb = by_row.get(t)
        if reb is not None and reb.weights is None:
            skipped += 1
        elif reb is not None:
            trades.append(sim.execute(t, reb, rec))
        nav = sim.close(t, rec, at_open=final_at_open and t == end)
        rec["ret"] = nav / nav_prev - 1.0
        rows.append(rec)
        nav_prev = nav
    trade_frame = pd.concat(trades, ignore_index=True) if trades else pd.DataFrame(columns=TRADE_COLUMNS)
    return BacktestResult(pd.DataFrame(rows), trade_frame, skipped)
