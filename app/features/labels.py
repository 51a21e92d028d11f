"""Forward-return labels and their cross-sectional rank.

``close`` labels: ``label_t = close_{t+h} / close_t - 1``, ended by bar ``t+h``.
``open`` labels: ``label_t = open_{t+1+h} / open_{t+1} - 1`` (decided at the close of ``t``,
filled at the next open), ended by bar ``t+1+h``. Bars are the symbol's own bars, so a halt
stretches the label over the calendar. ``label_ts`` is the ts of the bar whose price ends the
label; the last bars of a symbol have no label (NaN / null) and are kept for features only.

The rank label needs every symbol's label at a ts, so it cannot be computed inside a per-symbol
block: :func:`cross_sectional_rank` runs once over the narrow (symbol, ts, label, label_ts)
table of the whole universe and its result is handed to the per-symbol feature tasks.
"""
from __future__ import annotations

import numpy as np

from app.features.feature_config import LabelConfig
from app.features.panel import lead, safe_div
from app.errors import ConfigError

NO_TS = np.iinfo(np.int64).min  # label_ts of rows without a label


def label_reach(cfg: LabelConfig) -> int:
    """How many bars after ``t`` the label of ``t`` ends."""
    return int(cfg.horizon) + (1 if cfg.price == "open" else 0)


def validate_label(cfg: LabelConfig) -> None:
    if int(cfg.horizon) < 1:
        raise ConfigError(f"label.horizon={cfg.horizon} must be at least 1", "use label.horizon=1 or more")
    if cfg.price not in ("close", "open"):
        raise ConfigError(f"label.price={cfg.price!r} is unknown", "use label.price=close or label.price=open")


def forward_labels(close: np.ndarray, open_: np.ndarray, ts: np.ndarray, cfg: LabelConfig):
    """(label, label_ts) panels from (T, S) price panels and a float ts panel (NaN padded)."""
    h = int(cfg.horizon)
    if cfg.price == "open":
        start, end = lead(open_, 1), lead(open_, 1 + h)
    else:
        start, end = close, lead(close, h)
    label = safe_div(end, start) - 1.0
    label_ts = lead(ts, label_reach(cfg))
    label_ts[np.isnan(label)] = np.nan
    return label, label_ts


def cross_sectional_rank(ts: np.ndarray, label: np.ndarray, label_ts: np.ndarray):
    """Per-ts percentile of ``label`` across symbols, and the ts by which every label of that ts ended.

    Rank is ``(r - 1) / (n - 1)`` with average ranks for ties (0 = worst, 1 = best; 0.5 when one
    symbol has a label at that ts). Rows without a label get NaN. The second array is the max
    ``label_ts`` of the cross-section: a rank depends on all those labels, so splits must embargo
    by it, not by the row's own ``label_ts``.
    """
    import pandas as pd  # the driver's cross-symbol step only: a feature worker never loads pandas

    frame = pd.DataFrame({"ts": ts, "label": label, "label_ts": label_ts})
    frame.loc[frame["label"].isna(), "label_ts"] = np.nan
    groups = frame.groupby("ts", sort=False)
    r = groups["label"].rank(method="average")
    n = groups["label"].transform("count")
    rank = np.where(n > 1, (r - 1.0) / (n - 1.0).where(n > 1, 1.0), 0.5)
    rank = np.where(frame["label"].isna(), np.nan, rank)
    reach = groups["label_ts"].transform("max").to_numpy()
    reach = np.where(np.isnan(rank), np.nan, reach)
    return rank.astype(np.float64), reach
