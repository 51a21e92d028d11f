"""The daily price process: factors, a planted predictable component, splits, OHLCV on the tick grid.

Every symbol's adjusted log return on day t is

    r_t = mu_{t-1} + beta_i*M_t + gamma_i*S_{s(i),t} + sigma_i*eps_t + J_t   (J: rare jumps)
    mu_t = d_i + k*sigma_i*(-0.5 z_t + 0.25 (z_{t-1}+..+z_{t-4}) + sqrt(0.5) x_t + c sqrt(0.5) (x_t^2 - 1)),
    k = signal_strength, c = nonlinear_strength

with z_t the observed (tick-rounded) return over its long-run sd and x_t an AR(1) that sets the
log volume, so the predictable part is a function of the bars a model sees. Factors M and S are
AR(1) with stochastic log-volatility. docs/simulator.md gives the full specification.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from app.krx import ticks
from app.sim.config import MarketConfig

SQRT_HALF = math.sqrt(0.5)
VOLUME_SD = 0.5  # sd of log volume explained by x
VOLUME_ABS_RET = 0.3  # extra log volume per unit |z| (volume rises with the size of the move)
MOM_LAGS = 4
MIN_VOLUME = 5_000  # daily floor: every minute bar can then carry its four trade prints


@dataclass
class Params:
    """Per-symbol constants of the process."""

    sector: np.ndarray  # int, 0..n_sectors-1
    beta: np.ndarray  # market loading
    gamma: np.ndarray  # sector loading
    sigma: np.ndarray  # idiosyncratic daily vol
    s_tot: np.ndarray  # long-run total daily vol: the scale of z
    drift: np.ndarray  # d_i
    log_vol_mean: np.ndarray  # m_i: mean log volume
    price0: np.ndarray
    kosdaq: np.ndarray  # bool
    shares: np.ndarray  # listed shares


@dataclass
class History:
    """Raw daily bars (N symbols x T sessions) and the latent state the oracle needs."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    base: np.ndarray  # 기준가: previous close, divided by the split ratio on a split day
    volume: np.ndarray  # int64
    value: np.ndarray  # int64
    split: np.ndarray  # split ratio on the day (1.0 = none)
    z: np.ndarray  # observed standardised adjusted return
    x: np.ndarray  # volume-revealed signal
    mu: np.ndarray  # predictable part of the next day's log return (excl. factor persistence)
    factors: np.ndarray  # (1 + n_sectors) x T factor returns
    factor_logvol: np.ndarray  # (1 + n_sectors) x T log-vol deviations
    factor_base_vol: np.ndarray  # (1 + n_sectors,) long-run vol


def draw_params(cfg: MarketConfig, n: int) -> Params:
    rng = np.random.default_rng([cfg.seed, 11])
    sector = rng.integers(0, max(cfg.n_sectors, 1), n)
    beta = rng.uniform(0.6, 1.4, n)
    gamma = rng.uniform(0.5, 1.5, n) if cfg.n_sectors > 0 else np.zeros(n)
    sigma = rng.uniform(cfg.idio_vol_min, cfg.idio_vol_max, n)
    s_tot = np.sqrt(idio_variance(cfg, sigma) + (beta * cfg.market_vol) ** 2 + (gamma * cfg.sector_vol) ** 2)
    drift = rng.normal(0.0002, 0.0001, n)
    log_vol_mean = rng.normal(math.log(300_000), 0.9, n)
    price0 = np.exp(rng.uniform(math.log(5_000), math.log(150_000), n))
    kosdaq = rng.random(n) < cfg.kosdaq_fraction
    shares = np.round(np.exp(rng.uniform(math.log(5e6), math.log(5e8), n)) / 1000) * 1000
    return Params(sector, beta, gamma, sigma, s_tot, drift, log_vol_mean, price0, kosdaq, shares)


def idio_variance(cfg: MarketConfig, sigma: np.ndarray) -> np.ndarray:
    """Daily idiosyncratic variance: Gaussian noise plus the jumps' contribution."""
    return sigma**2 + cfg.jump_prob * cfg.jump_vol**2


def factor_paths(cfg: MarketConfig, t_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AR(1) factor returns with AR(1) log-vol; row 0 is the market, rows 1.. the sectors."""
    rng = np.random.default_rng([cfg.seed, 12])
    k = 1 + cfg.n_sectors
    base = np.array([cfg.market_vol] + [cfg.sector_vol] * cfg.n_sectors)
    p, s = cfg.vol_persistence, cfg.vol_of_vol
    h = np.zeros((k, t_len))
    f = np.zeros((k, t_len))
    hv = rng.normal(0, s, k)
    fv = np.zeros(k)
    eta, eps = rng.standard_normal((k, t_len)), rng.standard_normal((k, t_len))
    phi = cfg.factor_persistence
    for t in range(t_len):
        hv = p * hv + s * math.sqrt(1 - p * p) * eta[:, t]
        fv = phi * fv + base * np.exp(hv - s * s) * math.sqrt(1 - phi * phi) * eps[:, t]
        h[:, t], f[:, t] = hv, fv
    return f, h, base


def _tick_fn(fn, price: np.ndarray, day: dt.date, kosdaq: np.ndarray) -> np.ndarray:
    out = fn(price, ticks.table(day, False))
    if day < ticks.NEW_TABLE_FROM and kosdaq.any():
        out = np.where(kosdaq, fn(price, ticks.table(day, True)), out)
    return out


def round_tick(price, day, kosdaq):
    return _tick_fn(ticks.round_tick, price, day, kosdaq)


def limits(base, day, kosdaq):
    return _tick_fn(ticks.floor_tick, base * 1.3, day, kosdaq), _tick_fn(ticks.ceil_tick, base * 0.7, day, kosdaq)


def split_schedule(cfg: MarketConfig, n: int, t_len: int) -> dict[int, int]:
    """Symbol index -> session index of its one split (a few symbols, away from the edges)."""
    if cfg.split_fraction <= 0 or t_len < 60:
        return {}
    rng = np.random.default_rng([cfg.seed, 13])
    count = min(n, max(1, round(cfg.split_fraction * n)))
    who = rng.choice(n, size=count, replace=False)
    when = rng.integers(30, t_len - 10, size=count)
    return {int(i): int(t) for i, t in zip(who, when)}


def signal(z_hist: np.ndarray, x: np.ndarray, nonlinear: float = 0.0) -> np.ndarray:
    """Predictor from z_t (column 0), z_{t-1..t-4} and x_t: a unit-variance linear part plus
    ``nonlinear`` times the zero-mean, unit-variance (x_t^2 - 1)/sqrt(2), which no linear function of
    the bars can express (high volume in either direction of x lifts the next return)."""
    linear = -0.5 * z_hist[:, 0] + 0.25 * z_hist[:, 1:].sum(axis=1) + SQRT_HALF * x
    return linear + nonlinear * SQRT_HALF * (x * x - 1.0)


def simulate(cfg: MarketConfig, days: list[dt.date], prm: Params) -> History:
    n, t_len = len(prm.sigma), len(days)
    rng = np.random.default_rng([cfg.seed, 14])
    f, h, fbase = factor_paths(cfg, t_len)
    splits = split_schedule(cfg, n, t_len)
    k, phi_x = cfg.signal_strength, cfg.volume_persistence
    out = {name: np.zeros((n, t_len)) for name in ("open", "high", "low", "close", "base", "z", "x", "mu", "split")}
    vol = np.zeros((n, t_len), dtype=np.int64)
    value = np.zeros((n, t_len), dtype=np.int64)
    z_hist = np.zeros((n, 1 + MOM_LAGS))
    x = rng.standard_normal(n)
    mu = prm.drift.copy()
    prev = round_tick(prm.price0, days[0], prm.kosdaq)
    sector_f = 1 + prm.sector if cfg.n_sectors > 0 else np.zeros(n, dtype=int)
    for t, day in enumerate(days):
        eps, xi, g = rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal((3, n))
        jump = np.where(rng.random(n) < cfg.jump_prob, cfg.jump_vol * rng.standard_normal(n), 0.0)
        ratio = np.ones(n)
        for i in (i for i, ts in splits.items() if ts == t):
            ratio[i] = 10.0 if prev[i] >= 50_000 else 5.0 if prev[i] >= 10_000 else 2.0
        base = np.where(ratio > 1, round_tick(prev / ratio, day, prm.kosdaq), prev)
        r = mu + prm.beta * f[0, t] + prm.gamma * f[sector_f, t] + prm.sigma * eps + jump
        up, lo = limits(base, day, prm.kosdaq)
        close = np.clip(round_tick(base * np.exp(r), day, prm.kosdaq), lo, up)
        z = np.log(close / base) / prm.s_tot
        z_hist = np.concatenate([z[:, None], z_hist[:, :-1]], axis=1)
        x = phi_x * x + math.sqrt(1 - phi_x * phi_x) * xi
        mu = prm.drift + k * prm.sigma * signal(z_hist, x, cfg.nonlinear_strength)
        o, hi, lw = _ohlc(base, close, up, lo, prm, day, g, np.log(close / base))
        v = np.maximum(np.rint(np.exp(prm.log_vol_mean + VOLUME_SD * x + VOLUME_ABS_RET * (np.abs(z) - 0.8))), MIN_VOLUME)
        vol[:, t] = v.astype(np.int64)
        value[:, t] = np.rint(v * (o + hi + lw + 2 * close) / 5).astype(np.int64)
        for name, arr in (("open", o), ("high", hi), ("low", lw), ("close", close), ("base", base),
                          ("z", z), ("x", x), ("mu", mu), ("split", ratio)):
            out[name][:, t] = arr
        prev = close
    return History(volume=vol, value=value, factors=f, factor_logvol=h, factor_base_vol=fbase, **out)


def _ohlc(base, close, up, lo, prm: Params, day, g, r_obs):
    """Open from a partial gap, high/low as excursions beyond open/close; all on the grid, within limits."""
    o = np.clip(round_tick(base * np.exp(0.3 * r_obs + 0.3 * prm.s_tot * g[0]), day, prm.kosdaq), lo, up)
    top, bottom = np.maximum(o, close), np.minimum(o, close)
    hi = _tick_fn(ticks.ceil_tick, top * np.exp(np.abs(g[1]) * 0.6 * prm.s_tot), day, prm.kosdaq)
    lw = _tick_fn(ticks.floor_tick, bottom * np.exp(-np.abs(g[2]) * 0.6 * prm.s_tot), day, prm.kosdaq)
    return o, np.clip(hi, top, up), np.clip(lw, lo, bottom)
