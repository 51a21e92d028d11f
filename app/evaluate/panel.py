"""Inputs in checked, aligned shapes: predictions (long frame) and bars (time × symbol panels).

The predictions layout serves the model, its baselines and the oracle at once: one row per
``(symbol, ts)`` with the model's ``prediction`` and one ``pred_<name>`` column per baseline
(``pred_zero``, ``pred_ridge``, ``pred_oracle``, …), all scored against the same ``label``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from app.contracts import KST_NAME, normalize_symbol
from app.collect.store import BarStore
from app.errors import DataError

log = logging.getLogger(__name__)

MODEL_COLUMN = "prediction"
BASELINE_PREFIX = "pred_"
REQUIRED = ("symbol", "ts", MODEL_COLUMN, "label", "split")


def as_kst(ts: pd.Series) -> pd.Series:
    """Timestamps as tz-aware KST; naive ones are taken as UTC instants (how Arrow drops a zone)."""
    ts = pd.to_datetime(ts)
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    return ts.dt.tz_convert(KST_NAME).astype(f"datetime64[ns, {KST_NAME}]")


def normalize_symbols(values: pd.Series) -> pd.Series:
    """6-digit KRX codes, each distinct value converted once (the column repeats a few symbols)."""
    mapping = {v: normalize_symbol(v) for v in pd.unique(values)}
    return values.map(mapping).astype(str)


def prediction_columns(frame: pd.DataFrame) -> dict[str, str]:
    """``{name: column}``: ``model`` first, then every ``pred_<name>`` column in a stable order."""
    cols = {"model": MODEL_COLUMN}
    order = {"zero": 0, "ridge": 1, "oracle": 9}
    extra = sorted((c for c in frame.columns if c.startswith(BASELINE_PREFIX)),
                   key=lambda c: (order.get(c[len(BASELINE_PREFIX):], 5), c))
    cols.update({c[len(BASELINE_PREFIX):]: c for c in extra})
    return cols


def check_predictions(predictions: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """A normalised copy: 6-digit symbols, KST ts, float predictions, string split."""
    frame = predictions.to_pandas() if isinstance(predictions, pa.Table) else predictions.copy()
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"predictions lack column(s) {', '.join(missing)}",
                        "write predictions.parquet with symbol, ts, prediction, label, split")
    try:
        frame["symbol"] = normalize_symbols(frame["symbol"])
    except ValueError as exc:
        raise DataError(f"predictions: {exc}", "symbols must be 6-character KRX codes") from None
    frame["ts"] = as_kst(frame["ts"])
    for col in prediction_columns(frame).values():
        frame[col] = frame[col].astype(np.float64)
    frame["label"] = frame["label"].astype(np.float64)
    frame["split"] = frame["split"].astype(str)
    return frame.reset_index(drop=True)


def with_prediction_column(predictions: pd.DataFrame, values: pd.DataFrame | pa.Table, name: str,
                           value_column: str) -> pd.DataFrame:
    """Join another forecaster (e.g. the simulator's oracle table) as ``pred_<name>`` on (symbol, ts)."""
    other = values.to_pandas() if isinstance(values, pa.Table) else values.copy()
    other = other[["symbol", "ts", value_column]].rename(columns={value_column: BASELINE_PREFIX + name})
    other["symbol"] = normalize_symbols(other["symbol"])
    other["ts"] = as_kst(other["ts"])
    base = predictions.copy()
    base["ts"] = as_kst(base["ts"])
    base["symbol"] = normalize_symbols(base["symbol"])
    return base.merge(other, on=["symbol", "ts"], how="left")


@dataclass
class PricePanel:
    """Bars as (time × symbol) arrays on the union calendar; NaN where a symbol has no bar."""

    ts: pd.DatetimeIndex  # KST
    symbols: np.ndarray
    open: np.ndarray
    close: np.ndarray

    @property
    def days(self) -> np.ndarray:
        """Distinct session dates (datetime64[D]) of the calendar, for settlement dates."""
        return np.unique(self.ts.tz_convert(KST_NAME).tz_localize(None).values.astype("datetime64[D]"))

    def last_close(self) -> np.ndarray:
        """Close carried forward over halts: the mark of a position on a day without a bar."""
        return pd.DataFrame(self.close).ffill().to_numpy()


def price_panel(bars: pd.DataFrame | pa.Table, symbols: list[str] | None = None) -> PricePanel:
    frame = bars.to_pandas() if isinstance(bars, pa.Table) else bars.copy()
    missing = [c for c in ("symbol", "ts", "open", "close") if c not in frame.columns]
    if missing:
        raise DataError(f"bars lack column(s) {', '.join(missing)}", "pass Bars (app.contracts.BARS_SCHEMA)")
    frame["symbol"] = normalize_symbols(frame["symbol"])
    if symbols is not None:
        frame = frame[frame["symbol"].isin(set(symbols))]
    if frame.empty:
        raise DataError("no bars for the predicted symbols", "collect bars for the symbols in predictions.parquet")
    frame["ts"] = as_kst(frame["ts"])
    if frame.duplicated(["symbol", "ts"]).any():
        raise DataError("bars repeat a (symbol, ts)", "deduplicate the bars (the store keeps them unique)")
    bad = ~(frame[["open", "close"]].gt(0).all(axis=1))
    if bad.any():
        raise DataError(f"{int(bad.sum())} bar(s) have a non-positive open or close", "check the bars source")
    opens = frame.pivot(index="ts", columns="symbol", values="open").sort_index()
    closes = frame.pivot(index="ts", columns="symbol", values="close").reindex(index=opens.index, columns=opens.columns)
    return PricePanel(pd.DatetimeIndex(opens.index), opens.columns.to_numpy(dtype=str),
                      opens.to_numpy(np.float64), closes.to_numpy(np.float64))


def load_bars(root: str | Path, symbols: list[str], freq: str = "D") -> pd.DataFrame:
    """Bars of ``symbols`` from the Parquet store at ``root`` (a local path or a storage URI)."""
    store = BarStore(root)
    base = store.freq_dir(freq)
    tables = [t for t in (store.read(freq, s) for s in symbols) if t.num_rows]
    if not tables:
        raise DataError(f"no bars under {base} for the predicted symbols", "run stage=collect or set store.root")
    missing = len(symbols) - len(tables)
    if missing:
        log.warning("%d predicted symbol(s) have no bars under %s; they cannot be traded", missing, base)
    return pa.concat_tables(tables).to_pandas()
