"""A small 2-worker ``fit`` on the Ray cluster this process joins, for the node-loss test and benchmark.

``python -m tests.cluster_fit_probe RUN_DIR [EPOCHS [WORKERS MIN_WORKERS]]`` (as a ``ray job submit``
entrypoint; WORKERS defaults to 2, MIN_WORKERS to the elastic default): synthetic
windows with a planted signal, an LSTM, 2 workers of 1 CPU (one per node on a 2 x 1-CPU cluster),
``max_failures=1`` (the default); the run's ``metrics.json`` lands in RUN_DIR. The datasets are put by this driver,
so their blocks live on its node and survive the loss of the other one.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import ray

from app.errors import AppError
from app.train.config import TrainConfig
from app.train.fit import FitData, fit
from tests.train.train_testutil import N_FEATURES, to_dataset, windows


def main() -> None:
    run_dir = Path(sys.argv[1])
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    workers, fewest = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (2, None)
    ray.init(address="auto", log_to_driver=True)
    data = FitData(to_dataset(windows(100, 40, seed=1)).materialize(),
                   to_dataset(windows(10, 40, seed=2, start="2024-08-01")).materialize(), N_FEATURES,
                   {"feature_names": list("abcd")})
    cfg = TrainConfig(num_workers=workers, min_workers=fewest, epochs=epochs, batch_size=50, early_stopping_patience=0, max_failures=1,
                      baselines=False, seed=7)
    result = fit({"_target_": "app.models.lstm.LSTMModel", "hidden_size": 32, "num_layers": 1}, cfg, data,
                 run_dir, write_predictions=False)
    print("fit done:", json.dumps({"epochs": [r["epoch"] for r in result.history],
                                   "restores": json.loads(result.metrics_path.read_text())["restores"]}))


if __name__ == "__main__":
    try:
        main()
    except AppError as exc:  # the one line the main command prints for it
        print(f"error: {exc}")
        sys.exit(1)
