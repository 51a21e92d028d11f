"""The evaluate stage on a run folder: config node, label horizon, bars from the store, saved files."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest

from app.errors import DataError
from app.evaluate import Evaluation, evaluate_run
from app.evaluate.config import EvaluateConfig
from app.evaluate.stage import evaluate_folder
from app.evaluate.stage import run as evaluate_stage
from tests.conftest import compose_config
from tests.evaluate.evalmarket import random_market, write_store


def test_stage_reads_the_config_and_the_store(tmp_path):
    bars, preds = random_market(n_days=30, n_symbols=6, seed=8)
    write_store(tmp_path / "store", bars)
    run = tmp_path / "run"
    run.mkdir()
    preds.to_parquet(run / "predictions.parquet", index=False)
    cfg = compose_config(f"store.root={tmp_path / 'store'}", "label.horizon=5", "evaluate.top_k=2")
    summary = evaluate_stage(cfg, run)
    assert summary["horizon"] == 5 and summary["settings"]["top_k"] == 2
    assert json.loads((run / "evaluation.json").read_text()) == summary
    saved = Evaluation.load(run)
    assert set(saved.backtest_daily["portfolio"]) == {"top_k", "long_short", "equal_weight"}
    direct = evaluate_run(pa.Table.from_pandas(preds), pa.Table.from_pandas(bars), {"top_k": 2, "horizon": 5})
    assert direct.summary["models"]["model"]["backtest"] == summary["models"]["model"]["backtest"]


def test_stage_without_bars_says_how_to_fix_it(tmp_path):
    _, preds = random_market(n_days=10, n_symbols=3, seed=9)
    preds.to_parquet(tmp_path / "predictions.parquet", index=False)
    with pytest.raises(DataError, match="stage=collect"):
        evaluate_folder(tmp_path, EvaluateConfig(), str(tmp_path / "empty"))
    with pytest.raises(DataError, match="train stage"):
        evaluate_folder(tmp_path / "nowhere", EvaluateConfig())
