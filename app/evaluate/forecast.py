"""Forecast quality of one prediction column: errors, per-date IC and rank IC, ICIR, direction.

The definitions are the training loop's (``app.evaluate.metrics``), so a validation IC logged per
epoch and a test IC in the report mean the same thing. A date whose predictions are constant
(the zero forecast) has no cross-sectional correlation: its IC is NaN, the summary says how many
dates had one, and a model with none gets ``ic = None`` plus a note instead of an error.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from app.evaluate import metrics as M


def mae(pred: np.ndarray, label: np.ndarray) -> float:
    p, y = np.asarray(pred, np.float64).ravel(), np.asarray(label, np.float64).ravel()
    return float(np.mean(np.abs(p - y))) if p.size else float("nan")


def _scored(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Rows where both the forecast and the realised label exist."""
    return frame.loc[np.isfinite(frame[column]) & np.isfinite(frame["label"]), ["ts", "symbol", column, "label"]]


def daily_ic(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per-date ``ic`` and ``rank_ic`` (NaN where the cross-section carries no information)."""
    rows = _scored(frame, column)
    if rows.empty:
        return pd.DataFrame({"ts": pd.Series(dtype=frame["ts"].dtype), "ic": [], "rank_ic": [], "n": []})
    keys = rows["ts"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64)
    pred, label = rows[column].to_numpy(), rows["label"].to_numpy()
    dates, ic = M.per_date_ic(pred, label, keys)
    _, ric = M.per_date_ic(pred, label, keys, rank=True)
    counts = pd.Series(keys).value_counts().reindex(dates).to_numpy()
    ts = pd.to_datetime(dates, utc=True).tz_convert(frame["ts"].dt.tz)
    return pd.DataFrame({"ts": ts, "ic": ic, "rank_ic": ric, "n": counts})


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def summary(frame: pd.DataFrame, column: str, ic: pd.DataFrame | None = None) -> dict[str, float | int]:
    """MSE, MAE, IC, rank IC, their ICIRs, directional accuracy and counts over the rows given."""
    rows = _scored(frame, column)
    ic = daily_ic(frame, column) if ic is None else ic
    pred, label = rows[column].to_numpy(), rows["label"].to_numpy()
    return {
        "mse": M.mse(pred, label) if len(rows) else float("nan"),
        "mae": mae(pred, label),
        "ic": _mean(ic["ic"].to_numpy(np.float64)),
        "rank_ic": _mean(ic["rank_ic"].to_numpy(np.float64)),
        "icir": M.icir(ic["ic"].to_numpy(np.float64)),
        "rank_icir": M.icir(ic["rank_ic"].to_numpy(np.float64)),
        "dir_acc": M.directional_accuracy(pred, label) if np.any(pred != 0) else float("nan"),  # all-zero: no direction
        "n": int(len(rows)),
        "n_dates": int(len(ic)),
        "n_ic_dates": int(np.isfinite(ic["ic"].to_numpy(np.float64)).sum()),
    }


def by_month(frame: pd.DataFrame, column: str, ic: pd.DataFrame) -> list[dict]:
    """``summary`` per calendar month (KST) of the signal date."""
    months = frame["ts"].dt.strftime("%Y-%m")
    ic_months = ic["ts"].dt.strftime("%Y-%m") if len(ic) else pd.Series(dtype=str)
    out = []
    for month in sorted(months.unique()):
        block = summary(frame[months == month], column, ic[(ic_months == month).to_numpy()])
        out.append({"month": month, **block})
    return out


def by_fold(frame: pd.DataFrame, column: str, folds: pd.Series) -> dict[str, dict]:
    """``summary`` per walk-forward fold (``folds`` aligned with ``frame``)."""
    return {str(name): summary(frame[(folds == name).to_numpy()], column) for name in sorted(folds.dropna().unique(), key=str)}
