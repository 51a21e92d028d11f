"""Start-up of one training inside a Tune trial: the trial's own loop vs Ray Train V2's local mode.

``python -m bench.train_local_mode [--repeats 3]``: inside a running Ray instance (2 CPUs), the same
tiny epoch loop (an MLP on 4,096 random rows, 2 epochs) runs
  * ``direct`` (the baseline, ``tune.trial_mode=direct`` today): called in this process, as a trial
    process calls :func:`app.tune.direct.train_in_trial`;
  * ``local_mode``: ``TorchTrainer(loop, scaling_config=ScalingConfig(num_workers=0)).fit()``, Ray
    Train V2's local mode (the loop runs in this process, reports go through ``ray.train.report``);
  * ``one_worker``: the same TorchTrainer with ``num_workers=1`` (today's ``trial_mode=trainer``).
Prints JSON: per mode, the seconds from the call to the first epoch's report (start-up) and to the
end (total), medians over the repeats after one unmeasured warm-up call, and the load average
before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from bench._common import emit

ROWS, FEATURES, EPOCHS = 4096, 16, 2


def loop(config: dict) -> None:
    """Build, train ``EPOCHS`` epochs, report after each; writes when the first report happened to
    ``config["stamp"]`` (a file: the worker may be another process)."""
    import torch

    torch.manual_seed(0)
    x, y = torch.randn(ROWS, FEATURES), torch.randn(ROWS)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for epoch in range(EPOCHS):
        for i in range(0, ROWS, 256):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x[i:i + 256]).squeeze(-1), y[i:i + 256])
            loss.backward()
            opt.step()
        if epoch == 0:
            with open(config["stamp"], "w") as fh:
                fh.write(repr(time.time()))
        config["report"]({"epoch": epoch, "loss": float(loss.detach())})


def _first(stamp: str, began: float) -> float:
    with open(stamp) as fh:
        return float(fh.read()) - began


def _direct(storage: str) -> tuple[float, float]:
    stamp = os.path.join(storage, "direct.stamp")
    began = time.time()
    loop({"report": lambda row: None, "stamp": stamp})
    return _first(stamp, began), time.time() - began


def _trainer(num_workers: int, storage: str, tag: str) -> tuple[float, float]:
    import ray.train
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    stamp = os.path.join(storage, f"{tag}.stamp")

    def worker_loop(config: dict) -> None:
        loop({"report": ray.train.report, "stamp": config["stamp"]})

    began = time.time()
    TorchTrainer(worker_loop, train_loop_config={"stamp": stamp},
                 scaling_config=ScalingConfig(num_workers=num_workers),
                 run_config=RunConfig(name=tag, storage_path=storage)).fit()
    return _first(stamp, began), time.time() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    load_before = os.getloadavg()
    ray.init(num_cpus=2, object_store_memory=256 * 1024**2, include_dashboard=True, log_to_driver=False)
    runs: dict[str, list[tuple[float, float]]] = {"direct": [], "local_mode": [], "one_worker": []}
    with tempfile.TemporaryDirectory() as storage:
        _direct(storage)  # warm-up: imports torch and builds the first model, as a trial process already has
        for i in range(args.repeats):
            runs["direct"].append(_direct(storage))
            runs["local_mode"].append(_trainer(0, storage, f"local_{i}"))
            runs["one_worker"].append(_trainer(1, storage, f"worker_{i}"))
    ray.shutdown()
    out = {mode: {"startup_s": round(statistics.median(r[0] for r in rows), 3),
                  "total_s": round(statistics.median(r[1] for r in rows), 3),
                  "startup_each_s": [round(r[0], 3) for r in rows]} for mode, rows in runs.items()}
    out["baseline"] = "direct"
    out["local_mode_extra_startup_s"] = round(out["local_mode"]["startup_s"] - out["direct"]["startup_s"], 3)
    out["load_average_before"], out["load_average_after"] = load_before, os.getloadavg()
    emit(out)


if __name__ == "__main__":
    main()
