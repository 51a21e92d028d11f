"""Evaluation settings (the ``evaluate`` config group): portfolios, execution and KRX costs.

Plain dataclasses with defaults so tests and notebooks need no Hydra; the schema registers them as
a structured config. Each checks its values when built (``__post_init__``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Optional

from app.errors import ConfigError

EXECUTIONS = ("open", "close")


@dataclass
class TaxRate:
    """Sell-side securities transaction tax in force for transfers settled on or after ``start``.

    The rate is the all-in KRX figure: KOSPI = transaction tax + 0.15% rural special tax
    (농어촌특별세); KOSDAQ has no special tax and the same total in every year listed below.
    """

    start: str  # YYYY-MM-DD, first settlement (transfer) date of the rate
    rate: float  # fraction of the sell value


def krx_sell_tax() -> list[TaxRate]:
    """KOSPI/KOSDAQ totals by settlement date; the sources of each rate are listed in docs/report.md."""
    return [
        TaxRate("1996-01-01", 0.0030),
        TaxRate("2019-06-03", 0.0025),
        TaxRate("2021-01-01", 0.0023),
        TaxRate("2023-01-01", 0.0020),
        TaxRate("2024-01-01", 0.0018),
        TaxRate("2025-01-01", 0.0015),
        TaxRate("2026-01-01", 0.0020),
    ]


@dataclass
class CostConfig:
    commission_rate: float = 0.00015  # brokerage commission per side, fraction of traded value
    sell_tax: list[TaxRate] = field(default_factory=krx_sell_tax)
    settlement_lag: int = 2  # sessions from trade to settlement (T+2); the tax follows the settlement date
    slippage_ticks: float = 1.0  # per side, in KRX ticks of the execution price
    borrow_rate_annual: float = 0.03  # short positions: stock-loan fee on the short market value

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("commission_rate", "slippage_ticks", "borrow_rate_annual"):
            if getattr(self, name) < 0:
                raise ConfigError(f"evaluate.costs.{name}={getattr(self, name)} is negative", "use a value >= 0")
        if self.settlement_lag < 0:
            raise ConfigError(f"evaluate.costs.settlement_lag={self.settlement_lag} is negative", "use 2 (T+2)")
        starts = [_date(t.start, "evaluate.costs.sell_tax.start") for t in self.sell_tax]
        if starts != sorted(starts) or len(set(starts)) != len(starts):
            raise ConfigError("evaluate.costs.sell_tax is not sorted by start date", "list the rates oldest first")
        if any(not 0 <= t.rate < 0.05 for t in self.sell_tax):
            raise ConfigError("an evaluate.costs.sell_tax rate is outside [0, 5%)", "write rates as fractions: 0.0018")


def no_costs() -> CostConfig:
    """A frictionless market: what the benchmark index uses unless evaluate.benchmark_costs is set."""
    return CostConfig(commission_rate=0.0, sell_tax=[], slippage_ticks=0.0, borrow_rate_annual=0.0)


@dataclass
class FoldRange:
    """An out-of-sample date range of one walk-forward fold (inclusive dates)."""

    name: str
    start: str
    end: str


@dataclass
class EvaluateConfig:
    splits: list[str] = field(default_factory=lambda: ["test"])  # out-of-sample splits evaluated together
    fallback_split: Optional[str] = "val"  # used (with a note) when none of ``splits`` has rows
    horizon: Optional[int] = None  # rebalance every N bars; None = 1 (the stage passes label.horizon)
    execution: str = "open"  # price of the bar after the signal: open | close
    top_k: int = 5  # long-only book: the k best predictions, equal weight
    n_quantiles: int = 5  # long-short book: top quantile long, bottom quantile short
    long_short: bool = True
    capital: float = 100_000_000.0  # KRW; matters only with whole_shares
    whole_shares: bool = True  # round orders toward zero to whole shares
    price_limits: bool = True  # no buy at the upper limit, no sell at the lower limit (±30%)
    benchmark_costs: bool = False  # the equal-weight universe is an index: frictionless by default
    periods_per_year: int = 252
    risk_free_annual: float = 0.0
    walk_forward: bool = False
    fold_column: str = "fold"  # predictions column naming the fold, if present
    folds: list[FoldRange] = field(default_factory=list)  # else: date ranges of the folds
    costs: CostConfig = field(default_factory=CostConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.execution not in EXECUTIONS:
            raise ConfigError(f"evaluate.execution={self.execution!r} is unknown", "use open or close")
        for name in ("top_k", "periods_per_year"):
            if getattr(self, name) < 1:
                raise ConfigError(f"evaluate.{name}={getattr(self, name)} must be at least 1", f"set evaluate.{name}>=1")
        if self.horizon is not None and self.horizon < 1:
            raise ConfigError(f"evaluate.horizon={self.horizon} must be at least 1", "use the label horizon")
        if self.n_quantiles < 2:
            raise ConfigError(f"evaluate.n_quantiles={self.n_quantiles} must be at least 2", "e.g. 5 (quintiles)")
        if self.capital <= 0:
            raise ConfigError(f"evaluate.capital={self.capital} must be positive", "e.g. 100000000 (KRW)")
        if not self.splits:
            raise ConfigError("evaluate.splits is empty", "use [test] or [val, test]")
        for f in self.folds:
            if _date(f.start, "evaluate.folds.start") > _date(f.end, "evaluate.folds.end"):
                raise ConfigError(f"fold {f.name} starts after it ends", "swap start and end")
        self.costs.validate()

    @property
    def rebalance_every(self) -> int:
        return int(self.horizon or 1)


def _date(text: Any, key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not a date", "write YYYY-MM-DD") from None

