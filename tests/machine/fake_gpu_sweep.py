"""Run alone (``python tests/machine/fake_gpu_sweep.py``): a local Ray with one fake GPU, trials sized
by ``size_trials`` and run by Tune; prints what each trial was given, as JSON."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ray  # noqa: E402
from ray import tune  # noqa: E402

from app.errors import ConfigError  # noqa: E402
from app.train.config import TrainConfig  # noqa: E402
from app.train.device import resolve_use_gpu, select_device  # noqa: E402
from app.tune.config import TuneConfig  # noqa: E402
from app.tune.sweep import size_trials  # noqa: E402


def trial(config: dict) -> None:
    started = time.time()
    try:
        device = str(select_device(True))
    except ConfigError as exc:  # a fake GPU: Ray schedules it, CUDA has none
        device = f"refused: {exc.message}"
    time.sleep(1.5)
    tune.report({"gpu_ids": [str(i) for i in ray.get_gpu_ids()], "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                 "device": device, "started": started, "ended": time.time()})


def main() -> None:
    ray.init(num_cpus=2, num_gpus=1, object_store_memory=128 * 1024**2, log_to_driver=False, include_dashboard=False)
    try:
        total = ray.cluster_resources()
        train = resolve_use_gpu(TrainConfig(), float(total.get("GPU", 0)))  # auto: the cluster has a GPU
        sizing = size_trials("direct", train, TuneConfig(num_samples=2), float(total["CPU"]), float(total["GPU"]))
        with tempfile.TemporaryDirectory() as tmp:
            grid = tune.Tuner(
                tune.with_resources(trial, sizing.resources), param_space={"i": tune.grid_search([0, 1])},
                tune_config=tune.TuneConfig(max_concurrent_trials=sizing.max_concurrent),
                run_config=tune.RunConfig(storage_path=tmp, name="fake_gpu", verbose=0),
            ).fit()
            rows = [dict(r.metrics) for r in grid]
        keep = ("gpu_ids", "visible", "device", "started", "ended")
        print(json.dumps({"use_gpu": train.use_gpu, "resources": sizing.resources,
                          "max_concurrent": sizing.max_concurrent, "trials": [{k: r.get(k) for k in keep} for r in rows]}))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
