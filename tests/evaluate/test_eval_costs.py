"""KRX costs on a known trade list: commission, the dated sell tax by settlement date, tick slippage."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from app.errors import ConfigError
from app.evaluate.config import CostConfig, EvaluateConfig
from app.typed import typed
from app.evaluate.costs import limit_blocks, settlement_day, tax_rate, tick_size, trade_list_costs
from tests.conftest import ROOT

D = dt.date


def test_sell_tax_table_by_year():
    table = CostConfig().sell_tax
    assert tax_rate(D(2019, 5, 31), table) == 0.0030
    assert tax_rate(D(2022, 7, 1), table) == 0.0023
    assert tax_rate(D(2023, 6, 1), table) == 0.0020
    assert tax_rate(D(2024, 6, 3), table) == 0.0018
    assert tax_rate(D(2025, 3, 4), table) == 0.0015
    assert tax_rate(D(2026, 1, 2), table) == 0.0020


SESSIONS = np.array(["2024-12-26", "2024-12-27", "2024-12-30", "2025-01-02", "2025-01-03"], dtype="datetime64[D]")


def test_settlement_is_two_sessions_later_skipping_the_year_end_closure():
    assert settlement_day(D(2024, 12, 26), SESSIONS, 2) == D(2024, 12, 30)
    assert settlement_day(D(2024, 12, 27), SESSIONS, 2) == D(2025, 1, 2)  # 12-31 is no session
    assert settlement_day(D(2025, 1, 3), SESSIONS, 2) == D(2025, 1, 7)  # past the calendar: weekdays


def test_tick_sizes_follow_the_2023_reform():
    new = [tick_size(p, D(2024, 5, 2)).item() for p in (1_999, 2_000, 10_000, 49_950, 55_000, 600_000)]
    assert new == [1, 5, 10, 50, 100, 1_000]
    assert tick_size(10_000, D(2022, 5, 2)).item() == 50  # old KOSPI table: 10,000-50,000 -> 50


def test_costs_of_a_known_trade_list():
    trades = pd.DataFrame({
        "day": [D(2024, 12, 26), D(2024, 12, 27), D(2024, 12, 26), D(2024, 12, 27)],
        "shares": [100.0, -100.0, -50.0, -10.0],
        "price": [10_000.0, 10_500.0, 60_000.0, 1_500.0],
    })
    out = trade_list_costs(trades, SESSIONS, CostConfig(commission_rate=0.00015, slippage_ticks=1.0))
    # commission 0.015% of value
    assert out["commission"].tolist() == pytest.approx([150.0, 157.5, 450.0, 2.25])
    # sell tax by settlement date: 12-26 settles 12-30 (2024: 0.18%), 12-27 settles 2025-01-02 (0.15%)
    assert out["tax"].tolist() == pytest.approx([0.0, 0.0015 * 1_050_000, 0.0018 * 3_000_000, 0.0015 * 15_000])
    # one tick per share: 10 KRW at 10,000 and 10,500; 100 KRW at 60,000; 1 KRW at 1,500
    assert out["slippage"].tolist() == pytest.approx([1_000.0, 1_000.0, 5_000.0, 10.0])
    assert out["total"].sum() == pytest.approx(out[["commission", "tax", "slippage"]].to_numpy().sum())


def test_limit_blocks_at_plus_minus_30_percent():
    prev = np.array([128_500.0, 73_400.0, 10_000.0, np.nan])
    price = np.array([167_000.0, 51_400.0, 12_000.0, 10_000.0])  # docs/kis.md §7 examples: upper / lower limits
    buy, sell = limit_blocks(price, prev, D(2024, 5, 2))
    assert buy.tolist() == [True, False, False, False]
    assert sell.tolist() == [False, True, False, False]


def test_config_from_mapping_and_errors():
    cfg = typed(EvaluateConfig, {"top_k": 3, "costs": {"slippage_ticks": 0, "sell_tax": [{"start": "2020-01-01", "rate": 0.001}]},
                               "folds": [{"name": "f1", "start": "2024-01-01", "end": "2024-06-30"}]})
    assert cfg.top_k == 3 and cfg.costs.sell_tax[0].rate == 0.001 and cfg.folds[0].name == "f1"
    with pytest.raises(ConfigError, match="Key 'topk' not in 'EvaluateConfig'"):
        typed(EvaluateConfig, {"topk": 3})
    with pytest.raises(ConfigError, match="execution"):
        typed(EvaluateConfig, {"execution": "signal_close"})
    with pytest.raises(ConfigError, match="sorted"):
        typed(EvaluateConfig, {"costs": {"sell_tax": [{"start": "2025-01-01", "rate": 0.0015}, {"start": "2024-01-01", "rate": 0.0018}]}})


def test_yaml_matches_the_dataclass_and_its_defaults():
    """conf/evaluate/default.yaml composes over the structured config and changes no default."""
    schema = OmegaConf.structured(EvaluateConfig)
    merged = OmegaConf.merge(schema, OmegaConf.load(ROOT / "conf" / "evaluate" / "default.yaml"))
    cfg = typed(EvaluateConfig, merged, "evaluate")
    assert cfg == EvaluateConfig()
