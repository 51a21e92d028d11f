"""The reference forecasters beside the model in ``predictions.parquet``, and their test metrics.

``pred_zero`` (the random walk), ``pred_ridge`` (ridge on the training windows' last step) and, on
simulator data, ``pred_oracle`` (the simulator's E[r_{t+h} | information up to t], rebuilt from the
market's seed): what the evaluation compares the model with. Written by the train stage and by the
tune stage's best-trial re-evaluation, so both run folders carry the same columns.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from app.evaluate.baselines import fit_ridge, last_step
from app.evaluate.metrics import forecast_metrics
from app.evaluate.panel import with_prediction_column
from app.run_folder import DATA_MANIFEST

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)


def _ridge_frame(ridge, ds) -> pd.DataFrame:
    part = last_step(ds)
    ts = pd.to_datetime(part["ts"], utc=True).tz_convert("Asia/Seoul")
    return pd.DataFrame({"symbol": part["symbol"], "ts": ts, "ridge": ridge.predict(part["x_last"])})


def add_baselines(preds: pd.DataFrame, data, alpha: float) -> pd.DataFrame:
    """``pred_zero`` and ``pred_ridge`` on the same rows as the model's predictions."""
    train = last_step(data.train)
    ridge = fit_ridge(train["x_last"], train["y"], alpha)
    rows = pd.concat([_ridge_frame(ridge, data.dataset(p)) for p in ("val", "test")], ignore_index=True)
    out = with_prediction_column(preds, rows, "ridge", "ridge")
    out["pred_zero"] = 0.0
    return out


def add_oracle(preds: pd.DataFrame, cfg: AppConfig, run_dir: Path) -> pd.DataFrame:
    """On simulator data, the oracle of the same simulated market (rebuilt from its seed)."""
    from app.collect.sources import resolve_source, sim_config
    from app.kis.credentials import Credentials
    from app.sim.market import Market

    manifest = run_dir / DATA_MANIFEST
    source = json.loads(manifest.read_text()).get("source") if manifest.exists() else resolve_source(cfg)
    if source != "sim" or cfg.label.price != "close" or cfg.data.freq != "D":
        return preds
    market = Market(sim_config(cfg, Credentials("oracle-key", "oracle-secret")).market)
    oracle = market.oracle(int(cfg.label.horizon))
    return with_prediction_column(preds, oracle, "oracle", "expected_return")


def test_metrics(preds: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Forecast metrics of every forecaster on the test rows (per-date IC over KST dates)."""
    test = preds[preds["split"] == "test"]
    dates = test["ts"].astype("int64").to_numpy()
    cols = {"model": "prediction", **{c[5:]: c for c in test.columns if c.startswith("pred_")}}
    out = {}
    for name, col in cols.items():
        ok = test[col].notna().to_numpy()
        scores = forecast_metrics(test[col].to_numpy(np.float64)[ok], test["label"].to_numpy(np.float64)[ok],
                                  dates[ok])
        # NaN (an IC of a constant forecast) is not JSON: written as null
        out[name] = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in scores.items()}
    if "oracle" in out and out["oracle"].get("ic"):
        out["model"]["ic_of_oracle"] = out["model"]["ic"] / out["oracle"]["ic"]
    return out


def with_references(preds: pd.DataFrame, data, alpha: float, cfg: AppConfig,
                    run_dir: Path) -> tuple[pd.DataFrame, dict[str, dict]]:
    """The model's predictions with every reference column, and ``{"test": metrics}`` of all of them."""
    preds = add_oracle(add_baselines(preds, data, alpha), cfg, run_dir)
    test = test_metrics(preds)
    log.info("test IC: %s", {k: None if v.get("ic") is None else round(v["ic"], 4) for k, v in test.items()})
    return preds, {"test": test}
