"""Stage ``train``: windows from the features dataset → ``fit`` → predictions with every baseline.

``predictions.parquet`` gets one column per forecaster the evaluation compares: the model
(``prediction``), ``pred_zero``, ``pred_ridge`` (fit on the training windows' last step) and, on
simulator data, ``pred_oracle`` (the simulator's E[r_{t+h} | information up to t]). The run's
model bundle ``model/`` (:func:`app.predict.bundle.save_run_bundle`) is what ``stage=predict`` loads.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from app import storage
from app.predict.bundle import save_run_bundle
from app.train.baselines import fit_ridge, last_step
from app.train.config import TrainConfig
from app.train.fit import FitData, FitResult, fit
from app.train.metrics import forecast_metrics

log = logging.getLogger(__name__)


def features_path(cfg: DictConfig) -> str:
    from app.data.features import default_features_path

    root = storage.absolute(cfg.store.root)
    return str(cfg.features.path or default_features_path(root, str(cfg.data.freq)))


def _ridge_frame(ridge, ds) -> pd.DataFrame:
    part = last_step(ds)
    ts = pd.to_datetime(part["ts"], utc=True).tz_convert("Asia/Seoul")
    return pd.DataFrame({"symbol": part["symbol"], "ts": ts, "ridge": ridge.predict(part["x_last"])})


def add_baselines(preds: pd.DataFrame, data, alpha: float) -> pd.DataFrame:
    """``pred_zero`` and ``pred_ridge`` on the same rows as the model's predictions."""
    from app.evaluate.panel import with_prediction_column

    train = last_step(data.train)
    ridge = fit_ridge(train["x_last"], train["y"], alpha)
    rows = pd.concat([_ridge_frame(ridge, data.dataset(p)) for p in ("val", "test")], ignore_index=True)
    out = with_prediction_column(preds, rows, "ridge", "ridge")
    out["pred_zero"] = 0.0
    return out


def add_oracle(preds: pd.DataFrame, cfg: DictConfig, run_dir: Path) -> pd.DataFrame:
    """On simulator data, the oracle of the same simulated market (rebuilt from its seed)."""
    from app.data.sources import resolve_source, sim_config
    from app.evaluate.panel import with_prediction_column
    from app.kis.credentials import Credentials
    from app.sim.market import Market

    manifest = run_dir / "data_manifest.json"
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


def run(cfg: DictConfig, run_dir: Path) -> FitResult:
    from app.data.windows import make_window_datasets
    from app.ray_runtime import init_ray

    init_ray(cfg.ray)
    data = make_window_datasets(features_path(cfg), cfg)
    data.save(run_dir)
    meta: dict[str, Any] = {"feature_names": data.feature_names, "seq_len": data.seq_len,
                            "label": OmegaConf.to_container(cfg.label), "scaler": data.scaler.to_dict()}
    train_cfg = TrainConfig.from_mapping(OmegaConf.to_container(cfg.train, resolve=True))
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    result = fit(model_cfg, train_cfg, FitData(data.train, data.val, data.n_features, meta, data.test), run_dir,
                 checkpoints=storage.checkpoint_root(Path(run_dir), cfg))
    preds = pd.read_parquet(result.predictions_path)
    preds = add_oracle(add_baselines(preds, data, train_cfg.ridge_alpha), cfg, run_dir)
    preds.to_parquet(result.predictions_path, index=False)
    save_run_bundle(cfg, run_dir, result.best_checkpoint, data)
    metrics = json.loads(result.metrics_path.read_text())
    metrics["test"] = test_metrics(preds)
    result.metrics_path.write_text(json.dumps(metrics, indent=1, default=float))
    log.info("test IC: %s", {k: None if v.get("ic") is None else round(v["ic"], 4) for k, v in metrics["test"].items()})
    return result
