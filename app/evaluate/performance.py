"""Performance figures of a daily return series, as a trader reads them.

Conventions: simple daily returns; annualised return compounds (``(1+R)^(P/n) - 1``);
volatility, Sharpe and the information ratio use the sample standard deviation (ddof=1) scaled
by ``sqrt(P)`` with P periods per year; drawdown is measured on the NAV path starting at 1.
Undefined figures (too few days, zero variance) are NaN, never an exception.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _clean(returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    return r[np.isfinite(r)]


def cumulative_return(returns: np.ndarray) -> float:
    r = _clean(returns)
    return float(np.prod(1.0 + r) - 1.0) if r.size else float("nan")


def annualised_return(returns: np.ndarray, periods_per_year: int) -> float:
    r = _clean(returns)
    if not r.size:
        return float("nan")
    growth = np.prod(1.0 + r)
    return float(growth ** (periods_per_year / r.size) - 1.0) if growth > 0 else -1.0


def annualised_volatility(returns: np.ndarray, periods_per_year: int) -> float:
    r = _clean(returns)
    return float(r.std(ddof=1) * np.sqrt(periods_per_year)) if r.size >= 2 else float("nan")


def _ratio(excess: np.ndarray, periods_per_year: int) -> float:
    x = _clean(excess)
    if x.size < 2:
        return float("nan")
    sd = x.std(ddof=1)
    return float(x.mean() / sd * np.sqrt(periods_per_year)) if sd > 1e-15 else float("nan")


def sharpe(returns: np.ndarray, periods_per_year: int, risk_free_annual: float = 0.0) -> float:
    """Mean over standard deviation of the excess return, annualised."""
    return _ratio(np.asarray(returns, dtype=np.float64) - risk_free_annual / periods_per_year, periods_per_year)


def information_ratio(returns: np.ndarray, benchmark: np.ndarray, periods_per_year: int) -> float:
    """Sharpe of the active return (portfolio minus benchmark)."""
    return _ratio(np.asarray(returns, np.float64) - np.asarray(benchmark, np.float64), periods_per_year)


def drawdown(returns: np.ndarray) -> np.ndarray:
    """Drawdown after each period: NAV over its running peak (the start counts as a peak) minus 1."""
    nav = np.cumprod(1.0 + np.nan_to_num(np.asarray(returns, dtype=np.float64)))
    peak = np.maximum.accumulate(np.r_[1.0, nav])[1:]
    return nav / peak - 1.0


def max_drawdown(returns: np.ndarray) -> float:
    """The deepest drawdown (a negative number; 0 for a path that never fell)."""
    dd = drawdown(returns)
    return float(dd.min()) if dd.size else float("nan")


def portfolio_metrics(daily: pd.DataFrame, benchmark: np.ndarray | None, periods_per_year: int,
                      risk_free_annual: float, capital: float) -> dict[str, float | int | None]:
    """Return, risk, turnover and cost figures of one backtest's daily frame.

    Costs are reported in KRW and as *drag*: each day's cost over the NAV it was paid from,
    summed (the return the costs took away), and that sum per year.
    """
    r = daily["ret"].to_numpy(np.float64)
    rebal = daily["turnover"][daily["rebalance"]].to_numpy(np.float64)
    kinds = ("commission", "tax", "slippage", "borrow")
    nav_before = np.r_[capital, daily["nav"].to_numpy(np.float64)[:-1]]
    paid = {k: float(daily[k].sum()) for k in kinds}
    drag = {k: float(np.sum(daily[k].to_numpy(np.float64) / nav_before)) for k in kinds}  # return given up
    out: dict[str, float | int | None] = {
        "start": str(daily["ts"].iloc[0].date()), "end": str(daily["ts"].iloc[-1].date()), "n_days": int(r.size),
        "cumulative_return": cumulative_return(r),
        "annualised_return": annualised_return(r, periods_per_year),
        "annualised_volatility": annualised_volatility(r, periods_per_year),
        "sharpe": sharpe(r, periods_per_year, risk_free_annual),
        "information_ratio": None, "hit_rate_vs_benchmark": None,
        "max_drawdown": max_drawdown(r),
        "hit_rate": float(np.mean(r > 0)) if r.size else float("nan"),
        "n_rebalances": int(rebal.size),
        "avg_turnover": float(rebal[1:].mean()) if rebal.size > 1 else float("nan"),  # the initial build excluded
        "costs_krw": {**paid, "total": sum(paid.values())},
        "cost_drag": {**drag, "total": sum(drag.values())},
        "cost_drag_annual": sum(drag.values()) * periods_per_year / r.size if r.size else float("nan"),
        "avg_gross_exposure": float(daily["gross"].mean()),
    }
    if benchmark is not None:
        out["information_ratio"] = information_ratio(r, benchmark, periods_per_year)
        out["hit_rate_vs_benchmark"] = float(np.mean(r > benchmark)) if r.size else float("nan")
    return out
