"""Scale-free features on (time, symbol) panels: qlib's Alpha158 family, returns, volatility, volume.

Alpha158 follows qlib's expressions (``qlib/contrib/data/loader.py``) with one deliberate change:
rolling operators need a full window (qlib uses ``min_periods=1``), so warm-up rows are NaN and
can be masked instead of carrying half-window values. Names are qlib's, lower-cased, with the
prefix ``a158_`` (``a158_kmid``, ``a158_qtlu20``). Every output divides prices by prices and
volumes by volumes, so it does not change when a symbol's prices or volumes are rescaled.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from app.features.feature_config import Alpha158Config, FeaturesConfig
from app.features.panel import Rolling, safe_div, shift
from app.errors import ConfigError

EPS = 1e-12  # qlib's guard in denominators
KBAR = ("KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2")
PRICE_FIELDS = ("OPEN", "HIGH", "LOW", "CLOSE", "VWAP")


def _nan_keep(src: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` with NaN wherever ``src`` is NaN (comparisons would turn NaN into False)."""
    return np.where(np.isnan(src), np.nan, values)


#: Intermediate series shared by several operators, built on first use.
DERIVED: dict[str, Callable[[Rolling], np.ndarray]] = {
    "dclose": lambda r: r["close"] - shift(r["close"], 1),
    "up": lambda r: _nan_keep(r["dclose"], (r["dclose"] > 0).astype(np.float64)),
    "down": lambda r: _nan_keep(r["dclose"], (r["dclose"] < 0).astype(np.float64)),
    "gain": lambda r: np.maximum(r["dclose"], 0.0),
    "loss": lambda r: np.maximum(-r["dclose"], 0.0),
    "absd": lambda r: np.abs(r["dclose"]),
    "dvol": lambda r: r["volume"] - shift(r["volume"], 1),
    "vgain": lambda r: np.maximum(r["dvol"], 0.0),
    "vloss": lambda r: np.maximum(-r["dvol"], 0.0),
    "vabsd": lambda r: np.abs(r["dvol"]),
    "cret": lambda r: safe_div(r["close"], shift(r["close"], 1)),
    "logret": lambda r: np.log(r["cret"]),
    "logvol1": lambda r: np.log(r["volume"] + 1.0),
    "vchg": lambda r: np.log(safe_div(r["volume"], shift(r["volume"], 1)) + 1.0),
    "wv": lambda r: np.abs(r["cret"] - 1.0) * r["volume"],
    "vwap": lambda r: safe_div(r["value"], r["volume"]),
}


def _sum_ratio(r: Rolling, num: str, den: str, d: int, minus: str | None = None) -> np.ndarray:
    top = r.stat("sum", num, d)
    if minus is not None:
        top = top - r.stat("sum", minus, d)
    return top / (r.stat("sum", den, d) + EPS)


def _rsqr(r: Rolling, d: int) -> np.ndarray:
    slope = r.stat("slope", "close", d)
    s_tt = d * (d * d - 1) / 12.0
    return safe_div(slope * slope * s_tt, (d - 1) * r.stat("std", "close", d) ** 2)


def _resi(r: Rolling, d: int) -> np.ndarray:
    fitted_last = r.stat("mean", "close", d) + r.stat("slope", "close", d) * (d - 1) / 2.0
    return (r["close"] - fitted_last) / r["close"]


def _rsv(r: Rolling, d: int) -> np.ndarray:
    lo = r.stat("min", "low", d)
    return (r["close"] - lo) / (r.stat("max", "high", d) - lo + EPS)


ROLLING: dict[str, Callable[[Rolling, int], np.ndarray]] = {
    "ROC": lambda r, d: r.ref("close", d) / r["close"],
    "MA": lambda r, d: r.stat("mean", "close", d) / r["close"],
    "STD": lambda r, d: r.stat("std", "close", d) / r["close"],
    "BETA": lambda r, d: r.stat("slope", "close", d) / r["close"],
    "RSQR": _rsqr,
    "RESI": _resi,
    "MAX": lambda r, d: r.stat("max", "high", d) / r["close"],
    "MIN": lambda r, d: r.stat("min", "low", d) / r["close"],
    "QTLU": lambda r, d: r.stat("quantile", "close", d, 0.8) / r["close"],
    "QTLD": lambda r, d: r.stat("quantile", "close", d, 0.2) / r["close"],
    "RANK": lambda r, d: r.stat("rank", "close", d),
    "RSV": _rsv,
    "IMAX": lambda r, d: r.stat("idxmax", "high", d) / d,
    "IMIN": lambda r, d: r.stat("idxmin", "low", d) / d,
    "IMXD": lambda r, d: (r.stat("idxmax", "high", d) - r.stat("idxmin", "low", d)) / d,
    "CORR": lambda r, d: r.stat("corr", "close", d, "logvol1"),
    "CORD": lambda r, d: r.stat("corr", "cret", d, "vchg"),
    "CNTP": lambda r, d: r.stat("mean", "up", d),
    "CNTN": lambda r, d: r.stat("mean", "down", d),
    "CNTD": lambda r, d: r.stat("mean", "up", d) - r.stat("mean", "down", d),
    "SUMP": lambda r, d: _sum_ratio(r, "gain", "absd", d),
    "SUMN": lambda r, d: _sum_ratio(r, "loss", "absd", d),
    "SUMD": lambda r, d: _sum_ratio(r, "gain", "absd", d, minus="loss"),
    "VMA": lambda r, d: r.stat("mean", "volume", d) / (r["volume"] + EPS),
    "VSTD": lambda r, d: r.stat("std", "volume", d) / (r["volume"] + EPS),
    "WVMA": lambda r, d: r.stat("std", "wv", d) / (r.stat("mean", "wv", d) + EPS),
    "VSUMP": lambda r, d: _sum_ratio(r, "vgain", "vabsd", d),
    "VSUMN": lambda r, d: _sum_ratio(r, "vloss", "vabsd", d),
    "VSUMD": lambda r, d: _sum_ratio(r, "vgain", "vabsd", d, minus="vloss"),
}


def _kbar(r: Rolling) -> dict[str, np.ndarray]:
    o, h, l, c = r["open"], r["high"], r["low"], r["close"]
    rng = h - l + EPS
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    return {
        "KMID": (c - o) / o,
        "KLEN": (h - l) / o,
        "KMID2": (c - o) / rng,
        "KUP": (h - top) / o,
        "KUP2": (h - top) / rng,
        "KLOW": (bottom - l) / o,
        "KLOW2": (bottom - l) / rng,
        "KSFT": (2 * c - h - l) / o,
        "KSFT2": (2 * c - h - l) / rng,
    }


def validate_alpha158(cfg: Alpha158Config) -> None:
    unknown = [op for op in cfg.rolling if op not in ROLLING]
    if unknown:
        raise ConfigError(f"features.alpha158.rolling: unknown {unknown}", f"use names from {', '.join(ROLLING)}")
    bad = [p for p in cfg.price if p not in PRICE_FIELDS]
    if bad:
        raise ConfigError(f"features.alpha158.price: unknown {bad}", f"use names from {', '.join(PRICE_FIELDS)}")
    if any(int(d) < 2 for d in cfg.windows):
        raise ConfigError("features.alpha158.windows must all be >= 2", "e.g. features.alpha158.windows=[5,10,20,60]")


def iter_alpha158(r: Rolling, cfg: Alpha158Config) -> Iterator[tuple[str, np.ndarray]]:
    """The configured Alpha158 subset, one (column name, panel) at a time: a caller that stores
    each one right away (the batch path casts it to float32) finds it still in the CPU's cache."""
    if cfg.kbar:
        yield from ((f"a158_{k.lower()}", v) for k, v in _kbar(r).items())
    for name in cfg.price:
        yield f"a158_{name.lower()}0", r[name.lower()] / r["close"]
    for op in cfg.rolling:
        for d in cfg.windows:
            yield f"a158_{op.lower()}{int(d)}", ROLLING[op](r, int(d))


def iter_returns_and_volume(r: Rolling, cfg: FeaturesConfig) -> Iterator[tuple[str, np.ndarray]]:
    """Log returns, volatility of 1-bar log returns, and volume z-scores (all trailing windows)."""
    for n in cfg.returns:
        yield f"logret_{n}", np.log(safe_div(r["close"], r.ref("close", int(n))))
    for n in cfg.volatility:
        yield f"vol_{n}", r.stat("std", "logret", int(n))
    for n in cfg.volume_z:
        dev = r["volume"] - r.stat("mean", "volume", int(n))
        yield f"volz_{n}", safe_div(dev, r.stat("std", "volume", int(n)))


def rolled_features(r: Rolling, cfg: FeaturesConfig) -> Iterator[tuple[str, np.ndarray]]:
    """Every rolling-window feature panel in dataset order: returns and volume, then Alpha158."""
    yield from iter_returns_and_volume(r, cfg)
    yield from iter_alpha158(r, cfg.alpha158)


def rolling_context(panels: dict[str, np.ndarray]) -> Rolling:
    """A :class:`Rolling` over the bar panels (open, high, low, close, volume, value)."""
    return Rolling(panels, DERIVED)
