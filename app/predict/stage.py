"""``stage=predict run_dir=DIR``: score the newest bars (or a date range) with a run's model bundle.

Order of work: the bundle is loaded and checked; data settings not given on the command line
become the run's (:mod:`app.predict.inputs`); the store is brought up to date by the collect
stage's incremental collection (``predict.collect``); each symbol's bars in
``[predict.start, predict.end]`` are read with the trailing bars their features and windows
need; they are scored; ``signals.parquet`` / ``signals.csv``, ``portfolio.csv`` and
``predict_summary.json`` go to this run's folder (``experiments/predict/<date_time>/``).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from app import storage
from app.contracts import KST, normalize_symbols
from app.collect.store import BarStore
from app.errors import DataError
from app.predict import signals as sig
from app.predict.inputs import Trailing, apply_run_data, cli_keys, kst, parse_bound, trailing_bars
from app.predict.predictor import Predictor
from app.run_folder import PORTFOLIO_CSV, PREDICT_SUMMARY, SIGNALS, SIGNALS_CSV, RunFolder
from app.stage_registry import BaseStage

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)
#: The console's logger: the tables are for the person at the terminal, not only for run.log.
console = logging.getLogger("app.console")


def _collect(cfg: AppConfig, run_dir: Path) -> dict[str, Any] | None:
    if not cfg.predict.collect:
        return None
    from app.collect.collect import run as collect

    return collect(cfg, run_dir)


def _symbols(cfg: AppConfig, manifest: dict[str, Any] | None, store: BarStore) -> list[str]:
    """The symbols to score: data.symbols, else what collection resolved, else the whole store."""
    if cfg.data.symbols:
        return normalize_symbols(cfg.data.symbols)
    if manifest and manifest.get("symbols"):
        return sorted(manifest["symbols"])
    return store.symbols(str(cfg.data.freq))


def _check_present(symbols: list[str], manifest: dict[str, Any] | None, store: BarStore, freq: str,
                   source: str) -> None:  # fmt: skip
    """Every symbol to score must come from the source (or the store, without collection).

    A symbol whose collection failed this time (a transient error) but that has stored bars is
    scored from them and listed under ``failed``; one the source does not have at all stops the stage.
    """
    stored = set(store.symbols(freq))
    failed = set((manifest or {}).get("failed", {})) & stored
    have = (set(manifest["symbols"]) - set(manifest.get("failed", {})) | failed) if manifest else stored
    missing = [s for s in symbols if s not in have]
    if missing:
        raise DataError(
            f"the data source ({source}) has no {freq} bars for {len(missing)} of {len(symbols)} symbols: "
            f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}",
            "add them to the source, or pick the symbols it has with data.symbols=[...]",
        )


def _save(run_dir: Path, out: pd.DataFrame, held: pd.DataFrame, summary: dict[str, Any]) -> None:
    folder = RunFolder(run_dir)
    folder.write_frame(SIGNALS, out)
    folder.write_frame(SIGNALS_CSV, out.assign(ts=out["ts"].map(lambda t: t.isoformat())))
    folder.write_frame(PORTFOLIO_CSV, held)
    folder.write_json(PREDICT_SUMMARY, summary)


def _report(out: pd.DataFrame, held: pd.DataFrame, summary: dict[str, Any], show: int) -> None:
    newest = out[out["ts"] == out["ts"].max()] if len(out) else out
    console.info("signals of %s as of %s (%d symbols scored)\n%s", summary["model_run"], summary["as_of"],
             newest["symbol"].nunique(), sig.top_bottom(newest, show))  # fmt: skip
    table = held.to_string(index=False, float_format=lambda v: f"{v:,.4f}") if len(held) else "(no ranking)"
    console.info("book after %s (top %d, equal weight; next session %s, limits on its tick grid):\n%s",
             summary["as_of"], summary["top_k"], summary["next_session"], table)  # fmt: skip
    notes = {"no_window": "no complete window in range (too little history, or a feature undefined there)",
             "no_bars": "no bar in range", "failed": "collection failed"}  # fmt: skip
    for kind, text in notes.items():
        if summary[kind]:
            log.warning("%s: %s", text, summary[kind])


def _window(cfg: AppConfig, predictor: Predictor, store: BarStore, symbols: list[str]) -> Trailing:
    """The bars to score and their trailing history; no bar in range at all is an error."""
    freq = str(cfg.data.freq)
    start = parse_bound(cfg.predict.start, "predict.start", end=False)
    end = parse_bound(cfg.predict.end, "predict.end", end=True)
    window = trailing_bars(store, freq, symbols, start, end, predictor.trailing_bars)
    if window.bars.num_rows == 0:
        raise DataError(f"no {freq} bar between {kst(window.start)} and {kst(window.end)} for {len(symbols)} symbols",
                        f"pick predict.start/end on or before the newest bar, {kst(window.newest)}")  # fmt: skip
    return window


def _book(cfg: AppConfig, out: pd.DataFrame, window: Trailing) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The backtest's top-k book after the newest scored bar, and when it would trade."""
    from app.evaluate.stage import settings_from
    from app.krx.calendar import next_session_after

    settings = settings_from(cfg.evaluate, cfg.label.horizon)
    newest = out[out["ts"] == out["ts"].max()]
    as_of = newest["ts"].max().date() if len(newest) else dt.datetime.fromtimestamp(window.end, KST).date()
    held = sig.book(newest, _last_close(window.bars), settings.top_k, settings.capital, next_session_after(as_of))
    return held, {"as_of": str(as_of), "next_session": str(next_session_after(as_of)), "top_k": settings.top_k}


def predict_run(cfg: AppConfig, run_dir: Path, keys: set[str]) -> dict[str, Any]:
    """The stage with the command line's keys given explicitly (tests pass them; the CLI reads Hydra's)."""
    predictor = Predictor.load(Path(str(cfg.run_dir)))
    apply_run_data(cfg, predictor.doc, keys)
    manifest = _collect(cfg, run_dir)
    store = BarStore(storage.absolute(cfg.store.root))
    symbols = _symbols(cfg, manifest, store)
    _check_present(symbols, manifest, store, str(cfg.data.freq), (manifest or {}).get("source") or "the store")
    window = _window(cfg, predictor, store, symbols)
    workers = int(cfg.predict.workers or os.cpu_count() or 1)
    scores = predictor.score(window.bars, window.start, window.end, int(cfg.predict.batch_size), workers)
    out = sig.signals(scores.frame, predictor.run)
    held, when = _book(cfg, out, window)
    summary = {
        "model_run": predictor.run, "bundle": str(predictor.path.resolve()), "start": kst(window.start),
        "end": kst(window.end), "newest_bar": kst(window.newest), **when, "rows": len(out),
        "symbols_scored": int(out["symbol"].nunique()), "symbols": len(symbols), "no_window": scores.no_window,
        "no_bars": window.no_bars, "failed": (manifest or {}).get("failed", {}),
        "trailing_bars": predictor.trailing_bars, "portfolio": held.to_dict(orient="records"),
    }  # fmt: skip
    _save(run_dir, out, held, summary)
    _report(out, held, summary, int(cfg.predict.show))
    return summary


def _last_close(bars) -> pd.Series:
    frame = bars.select(["symbol", "close"]).to_pandas()
    return frame.groupby("symbol")["close"].last()


def run(cfg: AppConfig, run_dir: Path) -> dict[str, Any]:
    """Pipeline entry ``(cfg, run_dir)``."""
    return predict_run(cfg, Path(run_dir), cli_keys())


class PredictStage(BaseStage):
    def run(self, cfg: AppConfig, run_dir: Path) -> dict[str, Any]:
        return run(cfg, run_dir)


STAGE = PredictStage()
