"""Fake run folders: predictions, a bar store, a saved config with a secret in it, metrics and a manifest."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.evaluate.evalmarket import random_market, write_store

SECRET = "do-not-leak-0123456789"


def history(epochs: int = 6) -> list[dict]:
    return [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.1 / (e + 1) + 0.05, "val_ic": 0.01 * e,
             "val_rank_ic": 0.008 * e, "train_samples": 2000, "train_seconds": 0.5} for e in range(epochs)]


def create_run(base: Path, name: str = "2026-01-01_00-00-00", seed: int = 0, predictions: bool = True) -> Path:
    """A finished run folder under ``base/experiments/lstm/<name>`` with its own bar store."""
    run = base / "experiments" / "lstm" / name
    (run / ".hydra").mkdir(parents=True)
    store = base / f"store{seed}"
    bars, preds = random_market(n_days=40, n_symbols=8, seed=seed)
    write_store(store, bars)
    if predictions:
        preds.to_parquet(run / "predictions.parquet", index=False)
    (run / ".hydra" / "config.yaml").write_text(
        "experiment_name: lstm\n"
        f"store:\n  root: {store}\n"
        "data:\n  freq: D\n  source: sim\n"
        "label:\n  horizon: 1\n"
        f"kis:\n  app_secret: {SECRET}\n  rate_limit: 20\n"
        f"redis:\n  url: redis://:{SECRET}@127.0.0.1:6379/0\n"
        "evaluate:\n  top_k: 3\n")
    hist = history()
    (run / "metrics.json").write_text(json.dumps({
        "model": {"_target_": "app.models.lstm.LSTMRegressor"}, "n_parameters": 1234, "monitor": "val_loss",
        "best_epoch": 4, "best": hist[4], "history": hist, "timings": {"total_s": 5.0}}))
    (run / "data_manifest.json").write_text(json.dumps({
        "source": "sim", "freq": "D", "start": "2024-03-04", "end": None,
        "symbols": {s: {"status": "ok", "stored": {"first_ts": "2024-03-04T15:30:00+09:00",
                                                   "last_ts": "2024-04-26T15:30:00+09:00", "rows": 40}}
                    for s in sorted(bars["symbol"].unique())},
        "failed": {}, "totals": {"seconds": 2.0, "bars_fetched": 320, "bars_per_s": 160.0, "requests": 16,
                                 "requests_per_s": 8.0, "rate_limit": 20}}))
    return run


@pytest.fixture
def make_run(tmp_path):
    """``make_run(name, seed, predictions)``: a finished run folder in this test's tmp_path."""
    return lambda *args, **kwargs: create_run(tmp_path, *args, **kwargs)


@pytest.fixture(scope="module")
def built_report(tmp_path_factory):
    """One report built once per module (plots take most of a second each)."""
    from app.report import build_report

    run = create_run(tmp_path_factory.mktemp("built"))
    return run, build_report(run)
