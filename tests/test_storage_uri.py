"""An ``s3://`` storage root holds the live store, the features dataset and Ray Train's checkpoints.

Against a real S3 protocol peer on loopback (moto's server): what a multi-node run without NFS needs
is that every node reads and writes those three on the URI while the run goes on, not only a copy
of the finished run folder; a sweep's Tune experiment (trial checkpoints, saved state) likewise.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from app import storage
from app.contracts import BARS_SCHEMA, daily_ts
from app.features.features import read_manifest
from app.collect.store import BarStore
from app.errors import DataError
from tests.conftest import ROOT, compose_config
from tests.s3_testutil import s3_server  # noqa: F401 - the fixture
from tests.tune.conftest import features_store, make_cfg  # noqa: F401 - the sweep's data fixtures

SMALL_RUN = [
    "stage=[collect,features,train]", "data=sim", "data.universe=all", "data.limit=3", "data.start=2023-01-02",
    "data.sim.rate_limit=0", "train.epochs=2", "train.amp=off", "model.hidden_size=4", "model.num_layers=1",
    "collect.workers=0", "redis.url=null",
]  # fmt: skip


def bars(symbol: str, days: list[int], close: float = 100.0) -> pa.Table:
    rows = [dict(symbol=symbol, ts=daily_ts(dt.date(2024, 1, d)), open=close, high=close + 1, low=close - 1,
                 close=close, volume=10 * d, value=1000 * d, adjusted=True) for d in days]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=BARS_SCHEMA)


def test_join_puts_parts_before_the_query():
    uri = "s3://b/krx?endpoint_override=127.0.0.1:9000&scheme=http"
    assert storage.join(uri, "data", "bars") == "s3://b/krx/data/bars?endpoint_override=127.0.0.1:9000&scheme=http"
    assert storage.join("/mnt/nfs", "data") == "/mnt/nfs/data"


def test_credentials_in_the_uri_query_are_refused_at_config_time():
    with pytest.raises(storage.ConfigError, match="secret_key"):
        compose_config('storage.root="s3://b/krx?secret_key=abc&access_key=AKIA"')


def test_a_uri_root_puts_the_store_on_the_uri_and_the_token_files_locally(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(storage.RAY_JOB_ENV, raising=False)
    cfg = compose_config('storage.root="s3://b/krx?scheme=http"', "kis.token_dir=tokens")
    storage.resolve_paths(cfg)
    assert cfg.store.root == "s3://b/krx/data?scheme=http"
    assert cfg.kis.token_dir == str(tmp_path / "tokens")  # tokens are secrets: never on shared storage


def test_the_store_on_s3_reads_writes_merges_and_rebuilds_its_manifest(s3_server):
    root = s3_server.root("krx/data")
    store = BarStore(root)
    assert store.symbols("D") == [] and store.read("D", "005930").num_rows == 0 and store.ts_range("D", "005930") is None
    store.write("D", "005930", bars("005930", [2, 3]), source="sim")
    store.merge("D", "005930", bars("005930", [3, 4], close=200.0), source="sim")
    store.write("D", "000660", bars("000660", [2]), source="sim")
    assert store.symbols("D") == ["000660", "005930"]
    table = store.read("D", "005930")
    assert [t.day for t in table["ts"].to_pylist()] == [2, 3, 4] and table["close"].to_pylist() == [100, 200, 200]
    assert store.read("D", "005930", ["ts", "close"]).column_names == ["ts", "close"]
    first, last = store.ts_range("D", "005930")
    assert (first.day, last.day) == (2, 4)
    assert {k: v.rows for k, v in store.manifest("D").items()} == {"000660": 1, "005930": 3}
    assert "krx/data/bars/freq=D/symbol=005930/part-0.parquet" in s3_server.keys(root)


def test_a_failed_write_to_s3_uploads_nothing(s3_server, monkeypatch):
    root = s3_server.root("krx/data")
    store = BarStore(root)
    store.write("D", "005930", bars("005930", [2]), source="sim")
    before = s3_server.keys(root)

    def broken(*args, **kwargs):
        raise OSError("disk full half-way")

    monkeypatch.setattr("app.collect.store.pq.write_table", broken)
    with pytest.raises(OSError):
        store.write("D", "005930", bars("005930", [2, 3]), source="sim")
    assert s3_server.keys(root) == before and store.read("D", "005930").num_rows == 1


def test_a_missing_features_dataset_on_s3_is_a_one_line_error(s3_server):
    with pytest.raises(DataError, match="no features dataset"):
        read_manifest(storage.join(s3_server.root("krx/data"), "features", "freq=D"))


@pytest.mark.slow
def test_a_run_with_an_s3_root_keeps_store_features_and_checkpoints_on_s3(s3_server, tmp_path: Path):
    root = s3_server.root("krx")
    proc = subprocess.run([sys.executable, "-m", "app.main", *SMALL_RUN, f'storage.root="{root}"'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    keys = s3_server.keys(root)
    stored = [k for k in keys if k.startswith("krx/data/bars/freq=D/") and k.endswith("/part-0.parquet")]
    assert len(stored) == 3
    features = [k for k in keys if k.startswith("krx/data/features/freq=D/")]
    assert "krx/data/features/freq=D/_manifest.json" in features
    assert any("/build-" in k and k.endswith(".parquet") for k in features)
    runs = [k for k in keys if k.startswith("krx/experiments/")]
    # Ray Train's checkpoints went to the URI during the run, both epochs of them...
    assert len({k.split("/checkpoint_")[1].split("/")[0] for k in runs if "/checkpoint_" in k}) >= 1
    assert any(k.endswith("/model.pt") and "/checkpoints/train-" in k for k in runs)
    # ...and the run folder (its log, metrics and model bundle) was copied there at the end.
    for name in ("run.log", "metrics.json", "model/bundle.json", "checkpoints/best/model.pt"):
        assert any(k.endswith("/" + name) for k in runs), name
    # Nothing of the store or the features was left on the local staging root; the console names the URI.
    assert not (tmp_path / "data").exists()
    last = proc.stdout.splitlines()[-1]
    assert last.startswith("run folder: s3://") and last.endswith(root.split("?", 1)[1]), last


SWEEP_TRAIN = ["train.batch_size=128", "train.early_stopping_patience=0", "train.epochs=2", "model.num_layers=1"]
SWEEP = dict(num_samples=2, scheduler="fifo", max_t=2, n_startup_trials=2, plots=False,
             search_space={"lr": {"path": "train.lr", "type": "loguniform", "low": 1e-3, "high": 1e-2},
                           "hidden": {"path": "model.hidden_size", "type": "choice", "values": [4, 8]}})


@pytest.mark.slow
def test_a_sweep_on_an_s3_root_checkpoints_its_trials_there_and_resumes_from_there(s3_server, make_cfg, tmp_path):
    from app.errors import ConfigError
    from app.tune.stage import preflight, run

    root = s3_server.root("krx")
    with pytest.raises(ConfigError, match=r"s3://.*/tune/sweep.* holds no sweep"):  # before any work
        preflight(make_cfg(*SWEEP_TRAIN, f'storage.root="{root}"', resume=True, **SWEEP), tmp_path / "run")
    result = run(make_cfg(*SWEEP_TRAIN, f'storage.root="{root}"', **SWEEP), tmp_path / "run")
    frame = pd.read_parquet(result.results_path)
    assert len(frame) == 2 and (frame["epochs_run"] == 2).all()
    keys = s3_server.keys(root)
    sweep = [k for k in keys if "/tune/sweep/" in k]
    assert any(k.rsplit("/", 1)[-1].startswith("experiment_state-") for k in sweep)
    for trial_id in frame["trial_id"]:  # every trial checkpointed into the bucket while it ran
        assert any(f"/tune/sweep/trial_{trial_id}/checkpoint_" in k and k.endswith("/model.pt") for k in sweep)
    assert not list((tmp_path / "run" / "tune").glob("sweep/trial_*"))  # none of it in the local run folder
    summary = json.loads((tmp_path / "run" / "tune_summary.json").read_text())
    assert summary["experiment_dir"].startswith("s3://") and summary["best_trial"] == result.best_trial
    assert (tmp_path / "run" / "checkpoints" / "best" / "model.pt").exists()  # fetched from the bucket
    assert (tmp_path / "run" / "metrics.json").exists() and (tmp_path / "run" / "predictions.parquet").exists()
    # tune.resume=true finds the sweep on the URI; its trials are done, so nothing trains again.
    again = run(make_cfg(*SWEEP_TRAIN, f'storage.root="{root}"', resume=True, **SWEEP), tmp_path / "run")
    assert (again.best_trial, again.n_trials, again.trial_epochs) == (result.best_trial, 2, 4)
    ckpts = {k for k in s3_server.keys(root) if "/checkpoint_" in k}
    assert ckpts == {k for k in keys if "/checkpoint_" in k}


def test_a_resumed_asha_replays_a_trials_results_from_the_uri(s3_server):
    from types import SimpleNamespace

    from app.tune.asha import _remote_text, recorded_results

    fs, path = storage.filesystem(storage.join(s3_server.root("krx"), "tune", "sweep", "trial_a"))
    storage.put_object(fs, f"{path}/result.json", b'{"epoch": 1, "val_loss": 0.5}\n{"epoch": 2, "val_loss": 0.4}\n')
    trial = SimpleNamespace(storage=SimpleNamespace(storage_filesystem=fs), path=path)
    assert [r["epoch"] for r in recorded_results(Path(path), _remote_text(trial))] == [1, 2]
    missing = SimpleNamespace(storage=SimpleNamespace(storage_filesystem=fs), path=path + "x")
    assert list(recorded_results(Path(path + "x"), _remote_text(missing))) == []
