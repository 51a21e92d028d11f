"""The predict tests' command line: ``python -m app.main`` and the small training run they share."""
from __future__ import annotations

import subprocess
import sys

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
