"""The model bundle and ``stage=predict`` on a real (small) training run."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from app.collect.store import BarStore
from app.errors import DataError
from app.krx import ticks
from app.predict.bundle import read_bundle
from app.predict.predictor import Predictor
from app.predict.signals import SIGNAL_COLUMNS
from app.predict.stage import predict_run
from tests.conftest import compose_config
from tests.predict.predict_testutil import cli

pytestmark = pytest.mark.slow


def predict_cfg(run: Path, *overrides: str):
    return compose_config("stage=predict", f"run_dir={run}", "predict.collect=false", *overrides)


def newest_scores(run_or_bundle: Path, store: Path) -> pd.DataFrame:
    predictor = Predictor.load(run_or_bundle)
    s, n = BarStore(store), predictor.trailing_bars + 1
    bars = [t.slice(max(0, t.num_rows - n)) for t in (s.read("D", sym) for sym in predictor.doc["symbols"])]
    table = pa.concat_tables(bars)
    end = int(pa.compute.max(pa.compute.cast(table["ts"], pa.int64())).as_py())
    return predictor.score(table, end, end).frame


def test_bundle_holds_everything_scoring_needs(trained):
    doc, weights = read_bundle(trained["run"])
    assert weights == trained["run"] / "model" / "model.pt"
    assert doc["model"]["_target_"] == "app.models.lstm.LSTMModel" and doc["model"]["hidden_size"] == 8
    assert doc["model"]["n_features"] == len(doc["model_columns"]) == len(doc["scaler"]["feature_names"])
    assert doc["features"]["path"] is None and set(doc["model_columns"]) <= set(doc["feature_columns"])
    assert doc["seq_len"] == 20 and doc["warmup_bars"] > 500 and doc["freq"] == "D" and doc["target"] == "label"
    assert doc["label"]["horizon"] == 1 and len(doc["symbols"]) == 5 and doc["source"] == "sim"
    assert doc["train_period"]["start"] < doc["train_period"]["end"] < doc["split"]["test"]["start"]
    assert doc["config_digest"].startswith("sha256:") and doc["package_version"] and doc["run"].endswith("train")


def test_bundle_round_trip_after_the_run_folder_is_gone(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    before = newest_scores(run, trained["store"])
    elsewhere = tmp_path / "elsewhere" / "model"
    shutil.copytree(run / "model", elsewhere)
    shutil.rmtree(run)
    after = newest_scores(elsewhere, trained["store"])
    assert len(before) >= 3
    pd.testing.assert_frame_equal(before, after)


def test_older_or_damaged_bundles_are_refused_in_one_line(trained, tmp_path):
    shutil.copytree(trained["run"] / "model", tmp_path / "model")
    doc = json.loads((tmp_path / "model" / "bundle.json").read_text())
    (tmp_path / "model" / "bundle.json").write_text(json.dumps({**doc, "format": 0}))
    with pytest.raises(DataError, match="has format 0; this version reads format 1") as old:
        Predictor.load(tmp_path)
    assert "\n" not in str(old.value) and "fix:" in str(old.value)
    (tmp_path / "model" / "bundle.json").write_text(json.dumps(doc))
    with open(tmp_path / "model" / "model.pt", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(DataError, match="damaged"):
        Predictor.load(tmp_path)


def test_predict_over_the_test_dates_reproduces_the_runs_test_predictions(trained, tmp_path):
    preds = pd.read_parquet(trained["run"] / "predictions.parquet")
    test = preds[preds["split"] == "test"]
    first, last = test["ts"].min(), test["ts"].max()
    cfg = predict_cfg(trained["run"], f"predict.start={first.date()}", f"predict.end={last.date()}")
    predict_run(cfg, tmp_path, keys=set())
    out = pd.read_parquet(tmp_path / "signals.parquet")
    assert list(out.columns) == SIGNAL_COLUMNS
    both = test.merge(out, on=["symbol", "ts"], how="left")
    assert len(both) == len(test) > 100 and both["score"].notna().all()
    assert np.abs(both["score"].to_numpy(np.float64) - both["prediction"].to_numpy(np.float64)).max() <= 1e-5
    assert out["ts"].min() == first and out["ts"].max() == last  # every bar in range, labelled or not


def test_predict_lists_symbols_with_too_little_history(trained, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(trained["store"], store)
    s = BarStore(store)
    short = sorted(s.symbols("D"))[0]
    bars = s.read("D", short)
    s.write("D", short, bars.slice(bars.num_rows - 15), source="test")
    cfg = predict_cfg(trained["run"], f"store.root={store}")
    summary = predict_run(cfg, tmp_path / "out", keys={"store.root"})
    assert summary["no_window"][short] == 15  # listed with the bars it has, not dropped silently
    scored = set(pd.read_parquet(tmp_path / "out" / "signals.parquet")["symbol"])
    assert short not in scored and scored | set(summary["no_window"]) == set(s.symbols("D"))


def test_cli_predicts_as_of_the_newest_bar_after_an_incremental_collection(trained, tmp_path):
    out = tmp_path / "out"
    proc = cli("stage=predict", f"run_dir={trained['run']}", f"hydra.run.dir={out}", "evaluate.top_k=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "data_manifest.json").read_text())
    assert manifest["source"] == "sim" and manifest["totals"]["symbols_ok"] == 5  # the store was brought up to date
    signals = pd.read_parquet(out / "signals.parquet")
    store = BarStore(trained["store"])
    newest = max(store.read("D", s)["ts"][-1].as_py() for s in store.symbols("D"))
    summary = json.loads((out / "predict_summary.json").read_text())
    assert set(signals["symbol"]) | set(summary["no_window"]) == set(store.symbols("D")) and len(signals) >= 3
    assert (signals["ts"] == pd.Timestamp(newest)).all()  # the newest bar, which has no label yet
    assert sorted(signals["rank"]) == list(range(1, len(signals) + 1)) and signals["pct_rank"].max() == 1.0
    assert pd.read_csv(out / "signals.csv", dtype={"symbol": str}).columns.tolist() == SIGNAL_COLUMNS
    book = pd.read_csv(out / "portfolio.csv", dtype={"symbol": str})
    top = signals.nsmallest(2, "rank")["symbol"].tolist()
    assert book["symbol"].tolist() == top and np.allclose(book["weight"], 0.5)
    tab = ticks.table(pd.Timestamp(summary["next_session"]).date(), kosdaq=False)
    assert ticks.on_grid(book["upper_limit"].to_numpy(), tab).all() and (book["lower_limit"] < book["last_close"]).all()
    assert "top:" in proc.stdout + proc.stderr


def test_one_line_errors_for_a_folder_without_a_bundle_and_a_source_missing_symbols(trained, tmp_path):
    empty = tmp_path / "no_bundle"
    empty.mkdir()
    proc = cli("stage=predict", f"run_dir={empty}", f"hydra.run.dir={tmp_path / 'a'}")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "has no model bundle" in proc.stderr
    bars = BarStore(trained["store"]).read("D", read_bundle(trained["run"])[0]["symbols"][0]).to_pandas()
    path = tmp_path / "one.csv"
    bars.assign(date=bars["ts"].dt.strftime("%Y-%m-%d")).drop(columns=["ts"]).to_csv(path, index=False)
    proc = cli("stage=predict", f"run_dir={trained['run']}", "data=file", f"data.path={path}",
               f"store.root={tmp_path / 'store'}", f"hydra.run.dir={tmp_path / 'b'}")  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(line) == 1 and "has no D bars for 4 of 5 symbols" in line[0] and "fix:" in line[0]
