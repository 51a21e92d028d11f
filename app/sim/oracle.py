"""The exact conditional expectation the process implies (up to the approximations documented).

For horizon h the adjusted log return R = r_{t+1}+..+r_{t+h} is linear in the state at t and
in future Gaussian shocks, so its mean M follows a recursion on expected z's and its variance V
follows from impulse responses (the reversal/momentum feedback included). The oracle is
E[C_{t+h}/C_t - 1] = exp(M + V/2) - 1. Approximations: tick rounding and limit clipping are
ignored (rounding error is mean-zero and below half a tick), jumps enter as extra Gaussian
variance, the stochastic factor variance enters through its conditional expectation, and the
future variance of the nonlinear term (x^2) is left out of V (it matters for h >= 2 only).
"""
from __future__ import annotations

import math

import numpy as np

from app.sim.config import MarketConfig
from app.sim.process import MOM_LAGS, SQRT_HALF, History, Params, idio_variance


def _lag(a: np.ndarray, m: int) -> np.ndarray:
    """a[:, t+m] for m <= 0 (zeros before the first session, as the process assumed)."""
    if m == 0:
        return a
    out = np.zeros_like(a)
    out[:, -m:] = a[:, :m]
    return out


def expected_log_return(cfg: MarketConfig, prm: Params, hist: History, h: int) -> np.ndarray:
    """M = E[r_{t+1} + .. + r_{t+h} | state at t], shape (N, T)."""
    k, phi, phi_x = cfg.signal_strength, cfg.factor_persistence, cfg.volume_persistence
    ks = (k * prm.sigma)[:, None]
    sec = hist.factors[1 + prm.sector] if cfg.n_sectors > 0 else np.zeros_like(hist.z)
    mkt = hist.factors[0][None, :]
    z_exp: dict[int, np.ndarray] = {}  # E[z_{t+m}] for m >= 1

    def zz(m: int) -> np.ndarray:
        return z_exp[m] if m >= 1 else _lag(hist.z, m)

    total = np.zeros_like(hist.z)
    for j in range(1, h + 1):
        mom = sum(zz(j - q) for q in range(2, 2 + MOM_LAGS))
        # E[x_{t+j-1}^2 - 1 | x_t] = phi_x^(2(j-1)) (x_t^2 - 1): x is an exogenous AR(1)
        quad = cfg.nonlinear_strength * SQRT_HALF * phi_x ** (2 * (j - 1)) * (hist.x**2 - 1.0)
        e_j = (prm.drift[:, None] + ks * (-0.5 * zz(j - 1) + 0.25 * mom + SQRT_HALF * phi_x ** (j - 1) * hist.x + quad)
               + phi**j * (prm.beta[:, None] * mkt + prm.gamma[:, None] * sec))
        z_exp[j] = e_j / prm.s_tot[:, None]
        total += e_j
    return total


def _impulse(cfg: MarketConfig, prm: Params, direct: np.ndarray) -> np.ndarray:
    """Response of r at lags 0..h-1 to one unit shock, given its direct effect (N, h)."""
    fb = (cfg.signal_strength * prm.sigma / prm.s_tot)[:, None]
    g = np.zeros_like(direct)
    for lag in range(direct.shape[1]):
        acc = direct[:, lag].copy()
        if lag >= 1:
            acc -= 0.5 * fb[:, 0] * g[:, lag - 1]
        for q in range(2, 2 + MOM_LAGS):
            if lag >= q:
                acc += 0.25 * fb[:, 0] * g[:, lag - q]
        g[:, lag] = acc
    return g


def variance_log_return(cfg: MarketConfig, prm: Params, hist: History, h: int) -> np.ndarray:
    """V = Var(r_{t+1} + .. + r_{t+h} | state at t), shape (N, T)."""
    n = len(prm.sigma)
    lags = np.arange(h)
    phi, phi_x = cfg.factor_persistence, cfg.volume_persistence
    ones = np.ones((n, 1))
    idio = np.zeros((n, h))
    idio[:, 0] = np.sqrt(idio_variance(cfg, prm.sigma))
    volu = np.where(lags >= 1, phi_x ** np.maximum(lags - 1, 0), 0.0)[None, :] * (
        cfg.signal_strength * prm.sigma * SQRT_HALF * math.sqrt(1 - phi_x**2))[:, None]
    fac = (phi**lags)[None, :] * math.sqrt(1 - phi**2) * ones
    cum = {name: np.cumsum(_impulse(cfg, prm, d), axis=1)
           for name, d in (("idio", idio), ("vol", volu), ("mkt", fac * prm.beta[:, None]), ("sec", fac * prm.gamma[:, None]))}
    p, s = cfg.vol_persistence, cfg.vol_of_vol
    hv = hist.factor_logvol
    var = np.zeros_like(hist.z)
    for m in range(1, h + 1):
        c = {name: arr[:, h - m] for name, arr in cum.items()}
        # E[exp(2(h_{t+m} - s^2))] for h_{t+m} | h_t ~ N(p^m h_t, s^2 (1 - p^{2m}))
        fvar = hist.factor_base_vol[:, None] ** 2 * np.exp(2 * p**m * hv - 2 * s * s + 2 * s * s * (1 - p ** (2 * m)))
        sec_var = fvar[1 + prm.sector] if cfg.n_sectors > 0 else 0.0
        var += (c["idio"] ** 2 + c["vol"] ** 2)[:, None] + (c["mkt"] ** 2)[:, None] * fvar[0][None, :] \
            + (c["sec"] ** 2)[:, None] * sec_var
    return var


def expected_return(cfg: MarketConfig, prm: Params, hist: History, h: int) -> np.ndarray:
    """E[adjusted close_{t+h} / close_t - 1 | state at t], shape (N, T)."""
    if h < 1:
        raise ValueError("horizon must be >= 1")
    m = expected_log_return(cfg, prm, hist, h)
    v = variance_log_return(cfg, prm, hist, h)
    return np.expm1(m + 0.5 * v)
