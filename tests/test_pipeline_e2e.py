"""The main command end to end, as a user runs it: embedded simulator → collection → features →
Ray Train → evaluation → report, in one run folder."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT

STAGES = ["collect", "features", "train", "evaluate", "report"]
RUN_FILES = [
    ".hydra/config.yaml", "run.log", "data_manifest.json", "scaler.json", "split.json", "checkpoints/best/model.pt",
    "model/model.pt", "model/bundle.json",
    "predictions.parquet", "metrics.json", "evaluation.json", "performance_report.json", "summary.md",
    "loss.png", "ic.png", "backtest.png", "scatter.png", "throughput.png",
]


@pytest.mark.slow
def test_main_command_with_a_strong_signal_produces_the_run_folder_and_learns_the_signal(tmp_path: Path):
    run = tmp_path / "run"
    # The experiment as `make run` runs it (30 symbols since 2019), with a stronger, partly non-linear
    # planted signal, no rate limit and 8 of its 12 epochs, so that it takes about a minute and a half
    # (8 epochs: test IC 0.548 against ridge's 0.501; 12: 0.559).
    args = [sys.executable, "-m", "app.main", "+experiment=lstm", "data.sim.signal_strength=0.5",
            "data.sim.nonlinear_strength=1.5", "data.sim.rate_limit=0", "train.epochs=8",
            f"store.root={tmp_path / 'store'}", f"hydra.run.dir={run}"]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    missing = [f for f in RUN_FILES if not (run / f).exists()]
    assert missing == []
    # The console a person reads: the run folder first, a line per stage and epoch, the result last;
    # Ray's per-dataset and per-report output stays in run.log.
    out = proc.stdout.splitlines()
    assert len(out) + len(proc.stderr.splitlines()) <= 60, proc.stdout + proc.stderr
    assert out[0] == f"run folder: {run.resolve()}"
    assert out[-2:] == [f"summary: {run.resolve() / 'summary.md'}", f"run folder: {run.resolve()}"]
    assert out[-4].startswith("test IC: model ") and out[-3].startswith("top-5 book (after costs): Sharpe ")
    assert [line.split()[0] for line in out if line.split()[0] in ("collect", "features", "train", "evaluate",
                                                                      "report")] == STAGES  # fmt: skip
    epochs = json.loads((run / "metrics.json").read_text())["history"]
    assert len([line for line in out if line.startswith("epoch ")]) == len(epochs) > 0
    assert "Execution plan" not in proc.stderr and "Checkpoint successfully created" not in proc.stdout + proc.stderr
    preds = pd.read_parquet(run / "predictions.parquet")
    assert {"symbol", "ts", "prediction", "label", "split", "pred_zero", "pred_ridge", "pred_oracle"} <= set(preds)
    assert set(preds["split"]) == {"val", "test"}
    test = json.loads((run / "metrics.json").read_text())["test"]
    # The network learned the planted signal, non-linear part included: it beats the zero forecast (no
    # cross-sectional IC at all) and ridge on the last bar's features, and stays at or below the oracle.
    assert test["zero"]["ic"] is None
    assert test["oracle"]["ic"] + 0.02 >= test["model"]["ic"] > test["ridge"]["ic"] > 0.1, test
    report = json.loads((run / "performance_report.json").read_text())
    assert set(report["evaluation"]["models"]) >= {"model", "zero", "ridge", "oracle"}
