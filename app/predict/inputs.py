"""What ``stage=predict`` reads: the data settings (the run's unless given), the dates, the trailing bars.

The bundle fixes the model, features, scaler and label; the data source, symbols and store come
from the command line and default to what the run was trained on, key by key: ``data=file
data.path=...`` changes the source and keeps everything else the run used.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from app.contracts import BARS_SCHEMA, KST_NAME
from app.collect.store import BarStore
from app.errors import ConfigError, DataError
from app.predict.bundle import read_bundle

if TYPE_CHECKING:
    from app.config import AppConfig

READ_THREADS = 4  # store partitions read at once
#: data.* keys that pick the symbols; when none is given the bundle's symbols are scored.
SYMBOL_KEYS = ("data.symbols", "data.universe", "data.limit")


def cli_keys() -> set[str]:
    """Dotted keys the command line set (``data=file`` counts as data.source and data.path)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        task = HydraConfig.get().overrides.task
    except ValueError:  # not running under Hydra's main: nothing was given
        return set()
    keys = {str(o).split("=", 1)[0].lstrip("+~") for o in task}
    if "data" in keys:
        keys |= {"data.source", "data.path"}
    return keys


def given(key: str, keys: Iterable[str]) -> bool:
    """Whether ``key`` or a key under it was set (``data.sim.seed`` counts for ``data.sim``, not the reverse)."""
    return any(k == key or k.startswith(key + ".") for k in keys)


def _merge(node: Any, trained: Mapping[str, Any], prefix: str, keys: set[str]) -> None:
    """Set each field of the typed section ``node`` the command line did not give from ``trained``."""
    for name, value in trained.items():
        key = f"{prefix}.{name}"
        if not hasattr(node, name):
            continue
        current = getattr(node, name)
        if isinstance(value, Mapping) and dataclasses.is_dataclass(current):
            _merge(current, value, key, keys)
        elif not given(key, keys):
            setattr(node, name, value)


def apply_run_data(cfg: AppConfig, doc: dict[str, Any], keys: set[str]) -> None:
    """Fill every data/store key the command line did not set with the training run's value."""
    if given("data.freq", keys) and cfg.data.freq != doc["freq"]:
        raise ConfigError(f"data.freq={cfg.data.freq} but the model was trained on {doc['freq']} bars",
                          f"drop data.freq or use data.freq={doc['freq']}")  # fmt: skip
    _merge(cfg.data, doc["data"], "data", keys | set(SYMBOL_KEYS))  # the symbols: all given, or the bundle's
    if not any(given(k, keys) for k in SYMBOL_KEYS):
        cfg.data.symbols, cfg.data.universe, cfg.data.limit = list(doc["symbols"]), None, None
    if not given("store.root", keys) and doc.get("store_root"):
        cfg.store.root = doc["store_root"]
    cfg.data.freq = doc["freq"]


def check(cfg: AppConfig) -> None:
    """Config-time checks of ``stage=predict`` (exit 2 before any work): a readable bundle, valid dates."""
    if not cfg.run_dir:
        raise ConfigError("stage=predict needs run_dir", "add run_dir=experiments/<experiment>/<date_time>")
    try:
        read_bundle(Path(str(cfg.run_dir)))
    except DataError as exc:
        raise ConfigError(exc.message, exc.hint) from None
    start = parse_bound(cfg.predict.start, "predict.start", end=False)
    end = parse_bound(cfg.predict.end, "predict.end", end=True)
    if start is not None and end is not None and start > end:
        raise ConfigError(f"predict.start={cfg.predict.start} is after predict.end={cfg.predict.end}",
                          "give a start on or before the end")  # fmt: skip


def folder_overrides(overrides: list[str]) -> list[str]:
    """``experiment_name=predict`` for a predict-only command line, so its run folder is experiments/predict/<time>."""
    keys = dict(o.lstrip("+").split("=", 1) for o in overrides if "=" in o)
    stage = keys.get("stage", "")
    if "predict" in stage.strip("[]").split(",") and "experiment_name" not in keys:
        return ["experiment_name=predict"]
    return []


def parse_bound(text: str | None, key: str, end: bool) -> int | None:
    """Epoch seconds of a date or date-time in KST; a bare end date includes its whole day."""
    if text is None:
        return None
    try:
        stamp = pd.Timestamp(str(text))
    except ValueError:
        raise ConfigError(f"{key}={text!r} is not a date", f"write {key}=YYYY-MM-DD") from None
    stamp = stamp.tz_localize(KST_NAME) if stamp.tzinfo is None else stamp
    if end and len(str(text)) <= 10:
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    return int(stamp.timestamp())


@dataclass
class Trailing:
    """The bars to score with their trailing history, the resolved range, and symbols without bars in it."""

    bars: pa.Table
    start: int
    end: int
    newest: int
    no_bars: list[str] = field(default_factory=list)


def _ts(table: pa.Table) -> np.ndarray:
    return pc.cast(table["ts"], pa.int64()).to_numpy()


def trailing_bars(store: BarStore, freq: str, symbols: list[str], start: int | None, end: int | None,
                  trailing: int) -> Trailing:  # fmt: skip
    """Each symbol's bars in [start, end] plus ``trailing`` bars before them (both default to the newest bar)."""
    with ThreadPoolExecutor(READ_THREADS) as pool:  # Parquet decoding releases the GIL
        tables = dict(zip(symbols, pool.map(lambda s: store.read(freq, s), symbols)))
    lasts = [int(_ts(t)[-1]) for t in tables.values() if t.num_rows]
    newest = max(lasts) if lasts else 0
    hi = newest if end is None else min(end, newest)
    lo = start
    if lo is None:
        at_or_before = [int(ts[np.searchsorted(ts, hi, side="right") - 1]) for ts in map(_ts, tables.values())
                        if len(ts) and ts[0] <= hi]  # fmt: skip
        lo = max(at_or_before, default=hi)
    parts, no_bars = [], []
    for symbol, table in tables.items():
        ts = _ts(table)
        i0, i1 = int(np.searchsorted(ts, lo, side="left")), int(np.searchsorted(ts, hi, side="right"))
        if i1 <= i0:
            no_bars.append(symbol)
            continue
        first = max(0, i0 - trailing)
        parts.append(table.slice(first, i1 - first))
    bars = pa.concat_tables(parts) if parts else BARS_SCHEMA.empty_table()
    return Trailing(bars, lo, hi, newest, no_bars)


def kst(seconds: int) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.timezone.utc).astimezone(
        dt.timezone(dt.timedelta(hours=9))).isoformat()  # fmt: skip
