"""How many bars recursive indicators need before a value no longer depends on where history starts.

EMA, RSI, ATR/NATR, ADX and MACD are recursive: TA-Lib seeds them with an average of their first
bars, and the seed's error then decays geometrically, by a factor ``rho`` per bar (``1 - 2/(n+1)``
for an EMA, ``1 - 1/n`` for Wilder's smoothing). Computed from a symbol's last ``k`` bars instead of
its whole history, such a value differs from the full-history one by about ``C * rho**k`` (one
smoothing) or ``C * (k + 1) * rho**k`` (a smoothing of a smoothed series: ADX, the MACD signal),
``C`` being the seed's relative error. With ``C`` bounded by :data:`SEED_ERROR` this module counts
the bars after which the difference is below ``rtol``, relative to the feature's own scale.
Prediction computes features from the trailing bars only, so it needs this many bars before the
first window; the guarantee is checked against full-history features in the tests.
"""
from __future__ import annotations

import math

from app.features.feature_config import IndicatorConfig

#: Upper bound on a seed's relative error (measured seeds were below 1; 10 leaves a margin).
SEED_ERROR = 10.0
DEFAULT_RTOL = 1e-6


def _decay_bars(rho: float, rtol: float, double: bool) -> int:
    """Smallest ``k`` with ``SEED_ERROR * rho**k`` (times ``k + 1`` for a double smoothing) <= ``rtol``."""
    if rho <= 0.0:
        return 0
    k = max(0, math.ceil(math.log(rtol / SEED_ERROR) / math.log(rho)))
    while double and SEED_ERROR * (k + 1) * rho**k > rtol:
        k += max(1, k // 50)
    return k


def _ema_rho(n: int) -> float:
    return (int(n) - 1) / (int(n) + 1)


def _wilder_rho(n: int) -> float:
    return 1.0 - 1.0 / int(n)


def recursive_bars(cfg: IndicatorConfig, rtol: float = DEFAULT_RTOL) -> dict[str, int]:
    """Bars each recursive column of ``cfg`` needs (``ema_20``, ``rsi_14``, ``atr_14``, ``adx_14``,
    ``macd``; ``natr_<n>`` goes with ``atr_<n>``) before it agrees with its full-history value to ``rtol``."""
    need = {f"ema_{n}": int(n) - 1 + _decay_bars(_ema_rho(n), rtol, False) for n in cfg.ema}
    need.update({f"rsi_{n}": int(n) + _decay_bars(_wilder_rho(n), rtol, False) for n in cfg.rsi})
    need.update({f"atr_{n}": int(n) + _decay_bars(_wilder_rho(n), rtol, False) for n in cfg.atr})
    need.update({f"adx_{n}": 2 * int(n) - 1 + _decay_bars(_wilder_rho(n), rtol, True) for n in cfg.adx})
    slow, signal = int(cfg.macd_slow), int(cfg.macd_signal)
    rho = max(_ema_rho(slow), _ema_rho(signal), _ema_rho(cfg.macd_fast))
    need["macd"] = slow + signal - 2 + _decay_bars(rho, rtol, True)
    return need


def recursive_warmup(cfg: IndicatorConfig, rtol: float = DEFAULT_RTOL) -> int:
    """Bars before every recursive indicator of ``cfg`` agrees with its full-history value to ``rtol``."""
    return max(recursive_bars(cfg, rtol).values())
