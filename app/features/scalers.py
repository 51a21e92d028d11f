"""Feature scalers fit on the training period only, saved with the run as JSON.

Fitting is split into per-file partial statistics (run in parallel, one task per features file)
and a merge, so the training rows never need to sit in memory together:

* ``zscore``: exact mean / std (ddof 0) from per-file count, mean and M2 (Chan's merge);
* ``robust``: median and MAD x 1.4826 of a deterministic sample (every ``stride``-th bar of each
  symbol, ``stride`` from the training calendar alone), so the statistics do not depend on rows
  outside the training period;
* ``none``: identity.

A feature whose scale is zero or undefined keeps scale 1 (and center 0 if undefined).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ConfigError, DataError

METHODS = ("robust", "zscore", "none")
MAD_TO_STD = 1.4826


def sample_stride(n_symbols: int, train_bars: int, max_rows: int) -> int:
    return max(1, math.ceil(n_symbols * train_bars / max(1, max_rows)))


def partial_stats(x: np.ndarray, pos: np.ndarray, method: str, stride: int) -> dict[str, np.ndarray]:
    """Statistics of one file's training rows ``x`` (n, F); ``pos`` = each row's bar index in its symbol."""
    if method == "zscore":
        count = np.isfinite(x).sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(x, axis=0, dtype=np.float64) / count, 0.0)
        m2 = np.nansum((x - mean) ** 2, axis=0, dtype=np.float64)
        return {"count": count[None], "mean": mean[None], "m2": m2[None]}
    if method == "robust":
        return {"sample": x[pos % stride == 0].astype(np.float32)}
    return {}


def _merge_moments(parts: list[dict[str, np.ndarray]], n_features: int) -> tuple[np.ndarray, np.ndarray, int]:
    count, mean, m2 = np.zeros(n_features), np.zeros(n_features), np.zeros(n_features)
    for p in parts:
        for c_b, mean_b, m2_b in zip(p["count"], p["mean"], p["m2"]):
            total = count + c_b
            delta = mean_b - mean
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(total > 0, mean + delta * c_b / total, 0.0)
                m2 = m2 + m2_b + np.where(total > 0, delta**2 * count * c_b / total, 0.0)
            count = total
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.where(count > 0, m2 / count, np.nan))
    return mean, std, int(count.max(initial=0))


@dataclass
class FeatureScaler:
    method: str
    feature_names: list[str]
    center: np.ndarray
    scale: np.ndarray
    clip: float | None = None
    fit_rows: int = 0
    fit_period: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fit(cls, parts: list[dict[str, np.ndarray]], names: list[str], method: str, clip: float | None,
            fit_period: dict[str, str] | None = None) -> FeatureScaler:  # fmt: skip
        """Merge per-file :func:`partial_stats` into a fitted scaler."""
        if method not in METHODS:
            raise ConfigError(f"windows.scaler={method!r} is unknown", f"use one of {', '.join(METHODS)}")
        n = len(names)
        if method == "zscore":
            center, scale, rows = _merge_moments(parts, n)
        elif method == "robust":
            sample = np.concatenate([p["sample"] for p in parts]) if parts else np.zeros((0, n), np.float32)
            rows = len(sample)
            if rows == 0:
                raise DataError("no training rows to fit the scaler on", "check the split dates and the features")
            center = np.nanmedian(sample, axis=0).astype(np.float64)
            scale = MAD_TO_STD * np.nanmedian(np.abs(sample - center), axis=0).astype(np.float64)
        else:
            center, scale, rows = np.zeros(n), np.ones(n), 0
        center = np.where(np.isfinite(center), center, 0.0)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        return cls(method, list(names), center, scale, clip, rows, dict(fit_period or {}))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(x - center) / scale as float32, clipped; NaN stays NaN."""
        out = ((x - self.center) / self.scale).astype(np.float32)
        if self.clip is not None:
            np.clip(out, -self.clip, self.clip, out=out)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "feature_names": self.feature_names, "center": self.center.tolist(),
            "scale": self.scale.tolist(), "clip": self.clip, "fit_rows": self.fit_rows, "fit_period": self.fit_period,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaler:
        return cls(
            data["method"], list(data["feature_names"]), np.asarray(data["center"], np.float64),
            np.asarray(data["scale"], np.float64), data.get("clip"), int(data.get("fit_rows", 0)),
            dict(data.get("fit_period", {})),
        )  # fmt: skip

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> FeatureScaler:
        return cls.from_dict(json.loads(Path(path).read_text()))
