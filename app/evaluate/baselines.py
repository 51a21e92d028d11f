"""Non-neural baselines on the same split: the zero forecast, persistence, and ridge regression.

For returns the zero forecast is the random walk ("tomorrow's price is today's"), the bar every
model must clear on MSE; persistence repeats one feature's last value (e.g. the last return);
ridge regresses the label on the last step's features (closed form, unpenalised intercept).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray.data

from app.contracts import timestamps_as_int64
from app.errors import ConfigError, DataError
from app.evaluate.metrics import forecast_metrics


@dataclass(frozen=True)
class Ridge:
    coef: np.ndarray  # (n_features,)
    intercept: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, np.float64) @ self.coef + self.intercept).astype(np.float32)


def fit_ridge(features: np.ndarray, y: np.ndarray, alpha: float) -> Ridge:
    """argmin ||y - Xw - b||^2 + alpha ||w||^2, solved on centred data so b is not shrunk."""
    if alpha < 0:
        raise ConfigError(f"ridge alpha={alpha} is negative", "set train.ridge_alpha >= 0")
    x = np.asarray(features, np.float64)
    t = np.asarray(y, np.float64)
    if x.ndim != 2 or len(x) != len(t) or len(x) == 0:
        raise DataError(f"ridge needs (n, F) features and n labels, got {x.shape} and {t.shape}", "check the windows")
    x_mean, y_mean = x.mean(axis=0), t.mean()
    xc, yc = x - x_mean, t - y_mean
    gram = xc.T @ xc + alpha * np.eye(x.shape[1])
    coef = np.linalg.lstsq(gram, xc.T @ yc, rcond=None)[0]  # lstsq: stays finite when alpha=0 and X is singular
    return Ridge(coef, float(y_mean - x_mean @ coef))


def last_step(data: "ray.data.Dataset | Mapping[str, np.ndarray]", batch_size: int = 4096) -> dict[str, np.ndarray]:
    """``x_last`` (n, F), ``y``, ``ts`` (int64 ns) and, when present, ``symbol``, without holding
    whole windows in memory."""
    if isinstance(data, Mapping):
        batches = [data]
    elif isinstance(data, ray.data.Dataset):
        cols = [c for c in ("x", "y", "ts", "symbol") if c in data.schema().names]
        batches = data.select_columns(cols).iter_batches(batch_size=batch_size, batch_format="numpy")
    else:
        raise DataError(f"cannot read windows from {type(data).__name__}", "pass a Ray Dataset or a dict of arrays")
    parts: dict[str, list[np.ndarray]] = {"x_last": [], "y": [], "ts": []}
    for b in batches:
        parts["x_last"].append(np.asarray(b["x"])[:, -1, :].astype(np.float32))
        parts["y"].append(np.asarray(b["y"], np.float32))
        if "ts" in b:
            parts["ts"].append(timestamps_as_int64(b["ts"]))
        if "symbol" in b:
            parts.setdefault("symbol", []).append(np.asarray(b["symbol"]).astype(str))
    if not parts["y"]:
        raise DataError("no windows to evaluate the baselines on", "check the split's date range")
    out = {k: np.concatenate(v) for k, v in parts.items() if v}
    out.setdefault("ts", np.zeros(len(out["y"]), np.int64))  # one pseudo-date: IC becomes a pooled correlation
    return out


def run_baselines(
    train: Any, val: Any, *, alpha: float = 1.0, persistence_index: int | None = None
) -> dict[str, dict[str, Any]]:
    """Validation metrics (``forecast_metrics``) of each baseline, fitted on ``train`` only."""
    tr, va = last_step(train), last_step(val)
    preds = {
        "zero": np.zeros_like(va["y"]),
        "ridge": fit_ridge(tr["x_last"], tr["y"], alpha).predict(va["x_last"]),
    }
    if persistence_index is not None:
        if not 0 <= persistence_index < va["x_last"].shape[1]:
            raise ConfigError(
                f"persistence feature index {persistence_index} is out of range", "name an existing feature"
            )
        preds["persistence"] = va["x_last"][:, persistence_index]
    return {name: forecast_metrics(p, va["y"], va["ts"]) for name, p in preds.items()}
