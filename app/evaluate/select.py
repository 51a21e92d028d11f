"""Which prediction rows are out of sample, which fold each belongs to, and where each sits on the bar calendar."""
from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from app.evaluate.config import EvaluateConfig
from app.evaluate.panel import PricePanel
from app.errors import DataError

log = logging.getLogger(__name__)


def out_of_sample(preds: pd.DataFrame, cfg: EvaluateConfig) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Rows of ``cfg.splits`` (or of the fallback split, with a note); the splits used; notes."""
    rows = preds[preds["split"].isin(cfg.splits)]
    if not rows.empty:
        return rows, [s for s in cfg.splits if (rows["split"] == s).any()], []
    fallback = cfg.fallback_split
    if fallback and (preds["split"] == fallback).any():
        note = f"no rows in split(s) {', '.join(cfg.splits)}: evaluated the {fallback} split instead"
        log.warning(note)
        return preds[preds["split"] == fallback], [fallback], [note]
    raise DataError(f"predictions have no rows in split(s) {', '.join(cfg.splits)}",
                    f"predict a test split or set evaluate.splits (present: {', '.join(sorted(preds['split'].unique()))})")


def folds_of(frame: pd.DataFrame, cfg: EvaluateConfig) -> tuple[pd.Series | None, list[str]]:
    """The fold of each row: from ``cfg.fold_column`` if present, else from ``cfg.folds`` date ranges."""
    if not cfg.walk_forward:
        return None, []
    if cfg.fold_column in frame.columns:
        return frame[cfg.fold_column].astype(str).where(frame[cfg.fold_column].notna()), []
    if not cfg.folds:
        return None, ["walk_forward=true but predictions have no fold column and evaluate.folds is empty: no per-fold metrics"]
    day = frame["ts"].dt.date
    fold = pd.Series(pd.NA, index=frame.index, dtype="object")
    for f in cfg.folds:
        inside = (day >= dt.date.fromisoformat(f.start)) & (day <= dt.date.fromisoformat(f.end))
        fold[inside & fold.isna()] = f.name
    notes = [] if fold.notna().all() else [f"{int(fold.isna().sum())} row(s) fall in no fold range"]
    return fold, notes


def latest_fold_only(frame: pd.DataFrame, folds: pd.Series | None) -> pd.DataFrame:
    """One row per (symbol, ts): where folds overlap, the prediction of the later fold (the fresher model)."""
    if folds is None or not frame.duplicated(["symbol", "ts"]).any():
        return frame
    order = frame["ts"].groupby(folds.fillna("")).transform("min")  # a later fold starts later
    return frame.assign(_order=order).sort_values("_order", kind="stable").drop_duplicates(["symbol", "ts"], keep="last").drop(columns="_order").sort_index()


def calendar_rows(frame: pd.DataFrame, panel: PricePanel) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list[str]]:
    """Rows that sit on the bar calendar, with their panel row and symbol column; notes on the rest."""
    row = panel.ts.get_indexer(pd.DatetimeIndex(frame["ts"]))
    col = pd.Index(panel.symbols).get_indexer(frame["symbol"])
    keep = (row >= 0) & (col >= 0)
    notes = []
    if not keep.all():
        notes.append(f"{int((~keep).sum())} prediction row(s) have no bar at their ts and are not traded")
    return frame[keep], row[keep], col[keep], notes
