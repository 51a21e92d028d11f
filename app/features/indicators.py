"""Standard technical indicators from TA-Lib, one symbol at a time.

TA-Lib carries the standard definitions (Wilder smoothing in RSI/ATR/ADX, population std in
Bollinger bands, MACD seeded with SMAs, OBV starting at the first volume), so nothing here
re-implements them: each function is called on one symbol's contiguous float64 arrays, which is
what makes "never two symbols in one window" hold for the indicators. Columns that carry price or
volume units (``sma_*``, ``ema_*``, ``macd*``, ``bb_upper/middle/lower``, ``atr_*``, ``obv``) are
kept in the dataset; their scale-free companions (``close_sma_*``, ``macd_rel``, ``bb_pos``,
``natr_*``...) are what the model sees by default.
"""
from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np

from app.features.feature_config import FeaturesConfig, IndicatorConfig
from app.features.panel import safe_div
from app.errors import ConfigError


def _import_talib():
    """TA-Lib, imported without pandas when no pandas is loaded yet.

    ``talib/__init__`` imports pandas only to wrap every function for ``pandas.Series`` inputs,
    which this package never passes (NumPy arrays only), and a feature worker otherwise never
    loads pandas (:mod:`app.arrow_numpy`): 0.3 s of its start. A ``None`` entry in
    ``sys.modules`` makes the import fail as a missing module, which TA-Lib takes as "no pandas";
    the entry goes right after, so pandas still imports normally later in the process.
    """
    if "pandas" in sys.modules:
        import talib
    else:
        sys.modules["pandas"] = None  # type: ignore[assignment]
        try:
            import talib
        finally:
            if sys.modules.get("pandas", False) is None:
                del sys.modules["pandas"]
    return talib


talib = _import_talib()


def validate_indicators(cfg: IndicatorConfig) -> None:
    periods = [*cfg.sma, *cfg.ema, *cfg.rsi, *cfg.atr, *cfg.mfi, *cfg.adx, *cfg.cci, *cfg.willr, *cfg.roc]
    singles = [cfg.macd_fast, cfg.macd_slow, cfg.macd_signal, cfg.bb_period, cfg.stoch_fastk, cfg.stoch_slowk]
    if any(int(p) < 1 for p in periods + singles + [cfg.stoch_slowd]):
        raise ConfigError("features.indicators: periods must be positive", "use periods like 5, 14, 20")
    if cfg.macd_fast >= cfg.macd_slow:
        raise ConfigError(
            f"features.indicators.macd_fast={cfg.macd_fast} is not below macd_slow={cfg.macd_slow}",
            "use e.g. macd_fast=12 macd_slow=26",
        )


#: TA-Lib's functions without the wrapper that looks for pandas/polars Series among the arguments of
#: every call (measured: about half the cost of a call on 61 bars); these always get numpy arrays.
ta = SimpleNamespace(**{
    name: getattr(getattr(talib, name), "__wrapped__", getattr(talib, name))
    for name in ("SMA", "EMA", "RSI", "MACD", "BBANDS", "ATR", "NATR", "OBV", "STOCH", "MFI", "ADX", "CCI", "WILLR", "ROC")
})  # fmt: skip

#: Indicators whose value depends on the whole history (TA-Lib seeds them; see app/features/warmup.py);
#: the others depend on a fixed number of trailing bars only.
RECURSIVE = frozenset({"ema", "rsi", "macd", "atr", "adx"})
GROUPS = ("sma", "ema", "rsi", "macd", "bbands", "atr", "obv", "stoch", "mfi", "adx", "cci", "willr", "roc")


def ta_indicators(o, h, l, c, v, cfg: IndicatorConfig, groups: frozenset[str] | None = None) -> dict[str, np.ndarray]:
    """TA-Lib columns for one symbol (float64 arrays of equal length, oldest first).

    ``groups`` (names from :data:`GROUPS`) limits which indicators run; the columns keep their order.
    """
    out: dict[str, np.ndarray] = {}
    want = GROUPS if groups is None else groups
    if "sma" in want:
        for n in cfg.sma:
            out[f"sma_{n}"] = ta.SMA(c, timeperiod=int(n))
    if "ema" in want:
        for n in cfg.ema:
            out[f"ema_{n}"] = ta.EMA(c, timeperiod=int(n))
    if "rsi" in want:
        for n in cfg.rsi:
            out[f"rsi_{n}"] = ta.RSI(c, timeperiod=int(n))
    if "macd" in want:
        macd, signal, hist = ta.MACD(
            c, fastperiod=int(cfg.macd_fast), slowperiod=int(cfg.macd_slow), signalperiod=int(cfg.macd_signal)
        )
        out.update(macd=macd, macd_signal=signal, macd_hist=hist)
    if "bbands" in want:
        upper, middle, lower = ta.BBANDS(
            c, timeperiod=int(cfg.bb_period), nbdevup=float(cfg.bb_nbdev), nbdevdn=float(cfg.bb_nbdev), matype=0
        )
        out.update(bb_upper=upper, bb_middle=middle, bb_lower=lower)
    if "atr" in want:
        for n in cfg.atr:
            out[f"atr_{n}"] = ta.ATR(h, l, c, timeperiod=int(n))
            out[f"natr_{n}"] = ta.NATR(h, l, c, timeperiod=int(n))
    if "obv" in want:
        out["obv"] = ta.OBV(c, v)
    if "stoch" in want:
        k, d = ta.STOCH(
            h, l, c, fastk_period=int(cfg.stoch_fastk), slowk_period=int(cfg.stoch_slowk), slowk_matype=0,
            slowd_period=int(cfg.stoch_slowd), slowd_matype=0,
        )  # fmt: skip
        out.update(stoch_k=k, stoch_d=d)
    if "mfi" in want:
        for n in cfg.mfi:
            out[f"mfi_{n}"] = ta.MFI(h, l, c, v, timeperiod=int(n))
    if "adx" in want:
        for n in cfg.adx:
            out[f"adx_{n}"] = ta.ADX(h, l, c, timeperiod=int(n))
    if "cci" in want:
        for n in cfg.cci:
            out[f"cci_{n}"] = ta.CCI(h, l, c, timeperiod=int(n))
    if "willr" in want:
        for n in cfg.willr:
            out[f"willr_{n}"] = ta.WILLR(h, l, c, timeperiod=int(n))
    if "roc" in want:
        for n in cfg.roc:
            out[f"roc_{n}"] = ta.ROC(c, timeperiod=int(n))
    return out


def scale_free_companions(ind: dict[str, np.ndarray], c: np.ndarray, cfg: FeaturesConfig) -> dict[str, np.ndarray]:
    """Unit-free versions of the price-unit indicators (prices over prices)."""
    out: dict[str, np.ndarray] = {}
    if cfg.ma_ratios:
        for n in cfg.indicators.sma:
            out[f"close_sma_{n}"] = safe_div(c, ind[f"sma_{n}"]) - 1.0
        for n in cfg.indicators.ema:
            out[f"close_ema_{n}"] = safe_div(c, ind[f"ema_{n}"]) - 1.0
    for name in ("macd", "macd_signal", "macd_hist"):
        out[f"{name}_rel"] = safe_div(ind[name], c)
    width = ind["bb_upper"] - ind["bb_lower"]
    out["bb_width"] = safe_div(width, ind["bb_middle"])
    out["bb_pos"] = safe_div(c - ind["bb_lower"], width)
    return out
