"""One small training run (embedded simulator → features → Ray Train) shared by the predict tests."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: The run as a user would train it, kept small: 5 symbols since 2022, one epoch of a small LSTM.
TRAIN_ARGS = [
    "stage=[collect,features,train]", "data=sim", "data.universe=all", "data.limit=5", "data.start=2022-01-03",
    "data.sim.rate_limit=0", "data.sim.signal_strength=0.3", "train.epochs=1", "train.amp=off",
    "model.hidden_size=8", "model.num_layers=1", "collect.workers=0",
]  # fmt: skip


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m app.main <args>`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "app.main", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("predict")
    run, store = base / "train", base / "store"
    proc = cli(*TRAIN_ARGS, f"store.root={store}", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"run": run, "store": store, "base": base}
