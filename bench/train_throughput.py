"""Training throughput: the Ray Train loop (1 and 2 workers) vs a bare single-process loop.

Same model, data, batch size and loop body (:func:`app.train.loop.train_epoch`) everywhere;
what differs is how batches arrive (Ray Data shard vs in-memory arrays) and what surrounds the
epoch (DDP, gathering validation predictions, a checkpoint and ``ray.train.report`` per epoch).

* ``bare_t{1,2}_*``: this process, ``torch.set_num_threads(1 or 2)``, batches sliced from arrays;
  ``bare_t1_fp32`` runs again at the end to show how much the shared machine drifted;
* ``ray1_c{1,2}_*``: ``fit`` with 1 worker reserving 1 or 2 CPUs (as many torch threads);
* ``ray2_*``: ``fit`` with 2 DDP workers of 1 CPU each (gloo all-reduce every step).

Steady state = the median over epochs after the first (the first pays Ray Data's start-up).
Wall samples/s count only the training pass (``data_wait_share``: the part of it spent waiting
for batches); ``*_per_cpu_s`` divides by the process CPU time
of that pass (every thread, including Ray Data's prefetcher), which contention from other
processes inflates far less than wall time. Fixed costs of a ``fit`` call are reported apart:
start-up to the first epoch, shutdown after the last, writing outputs. Prints one JSON object.
Example: ``python bench/train_throughput.py --n-train 16384 --epochs 4``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import PeakRss, emit  # noqa: E402

from app.models.factory import build_model  # noqa: E402
from app.train.amp import resolve_amp  # noqa: E402
from app.train.batches import array_batches  # noqa: E402
from app.train.config import TrainConfig  # noqa: E402
from app.train.loop import Optimization, make_loss, predict_batches, seed_everything, steps_per_epoch, train_epoch  # noqa: E402

MODELS = {
    "lstm": {"_target_": "app.models.lstm.LSTMModel"},
    "gru": {"_target_": "app.models.gru.GRUModel"},
    "transformer": {"_target_": "app.models.transformer.TransformerModel"},
    "tcn": {"_target_": "app.models.tcn.TCNModel"},
}


def make_arrays(n: int, seq_len: int, n_features: int, n_symbols: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, seq_len, n_features)).astype(np.float32)
    w = rng.standard_normal(n_features).astype(np.float32) / np.sqrt(n_features)
    y = (x[:, -1] @ w + 0.5 * rng.standard_normal(n)).astype(np.float32)
    days = pd.bdate_range("2015-01-02", periods=-(-n // n_symbols)).tz_localize("Asia/Seoul")
    ts = np.repeat(days.to_numpy(), n_symbols)[:n]
    symbol = np.tile([f"{i:06d}" for i in range(n_symbols)], len(days))[:n]
    return {"x": x, "y": y, "ts": ts, "symbol": symbol}


def to_dataset(a: dict[str, np.ndarray]):
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    ts = pa.array(pd.DatetimeIndex(a["ts"]), pa.timestamp("s", tz="Asia/Seoul"))
    return ray.data.from_arrow(
        pa.table({"x": ArrowTensorArray.from_numpy(a["x"]), "y": a["y"], "symbol": a["symbol"], "ts": ts, "label_ts": ts})
    )


def steady(rows: list[dict]) -> dict[str, float]:
    later = rows[1:] or rows
    return {
        "train_samples_per_s": float(np.median([r["train_samples"] / r["train_seconds"] for r in later])),
        "train_samples_per_cpu_s": float(np.median([r["train_samples"] / r["train_cpu_seconds"] for r in later])),
        "epoch_samples_per_s": float(np.median([r["train_samples"] / r["epoch_seconds"] for r in later])),
        "first_epoch_train_samples_per_s": rows[0]["train_samples"] / rows[0]["train_seconds"],
        "data_wait_share": float(np.median([r["train_data_wait_seconds"] / r["train_seconds"] for r in later])),
    }


def bare(model_cfg: dict, cfg: TrainConfig, train: dict, val: dict, threads: int) -> dict:
    """The same loop body in this process, batches sliced from in-memory arrays."""
    torch.set_num_threads(threads)
    seed_everything(cfg.seed)
    model = build_model(model_cfg, train["x"].shape[-1])
    amp = resolve_amp(cfg.amp, torch.device("cpu"))
    opt = Optimization(model, cfg, amp, steps_per_epoch(len(train["x"]), cfg) * cfg.epochs)
    loss_fn, rows = make_loss(cfg), []
    for epoch in range(cfg.epochs):
        started = time.perf_counter()
        batches = array_batches(train["x"], train["y"], cfg.batch_size, shuffle=True, seed=epoch)
        stats = train_epoch(model, batches, opt, loss_fn, amp, cfg.grad_accum_steps)
        predict_batches(model, array_batches(val["x"], val["y"], cfg.eval_batch_size, ts=val["ts"]), amp)
        rows.append({
            "train_samples": stats.samples, "train_seconds": stats.seconds, "train_cpu_seconds": stats.cpu_seconds,
            "train_data_wait_seconds": stats.wait_seconds,
            "epoch_seconds": time.perf_counter() - started, "train_loss": stats.loss,
        })
    return {**steady(rows), "final_train_loss": rows[-1]["train_loss"]}


def ray_fit(model_cfg: dict, cfg: TrainConfig, datasets: tuple, root: Path, tag: str) -> dict:
    from app.train.fit import fit

    with PeakRss() as rss:
        result = fit(model_cfg, cfg, datasets, root / tag)
    return {
        **steady(result.history),
        "final_train_loss": result.history[-1]["train_loss"],
        **{k: round(v, 2) for k, v in result.timings.items()},
        "peak_rss_gib_process_tree": rss.gib,
    }


def run_all(model_cfg: dict, common: dict, train: dict, val: dict, datasets: tuple, root: Path) -> dict:
    """Interleaved, so slow drift on the shared machine spreads over both sides."""
    runs: dict[str, dict] = {}
    for amp, tag in (("off", "fp32"), ("bf16", "bf16")):
        cfg = dict(common, amp=amp)
        runs[f"bare_t1_{tag}"] = bare(model_cfg, TrainConfig(**cfg), train, val, threads=1)
        runs[f"ray1_c1_{tag}"] = ray_fit(model_cfg, TrainConfig(**cfg, num_workers=1, cpus_per_worker=1), datasets, root, f"ray1_c1_{tag}")
        runs[f"ray2_{tag}"] = ray_fit(model_cfg, TrainConfig(**cfg, num_workers=2, cpus_per_worker=1), datasets, root, f"ray2_{tag}")
        runs[f"bare_t2_{tag}"] = bare(model_cfg, TrainConfig(**cfg), train, val, threads=2)
    cfg = dict(common, amp="off")
    runs["ray1_c2_fp32"] = ray_fit(model_cfg, TrainConfig(**cfg, num_workers=1, cpus_per_worker=2), datasets, root, "ray1_c2_fp32")
    runs["bare_t1_fp32_again"] = bare(model_cfg, TrainConfig(**cfg), train, val, threads=1)
    return runs


def ratios(runs: dict[str, dict]) -> dict[str, float]:
    def r(name: str, key: str = "train_samples_per_s") -> float:
        return runs[name][key]

    bare_t1 = (r("bare_t1_fp32") + r("bare_t1_fp32_again")) / 2
    out = {
        "ray1_vs_bare_1thread_fp32": r("ray1_c1_fp32") / bare_t1,
        "ray1_vs_bare_1thread_bf16": r("ray1_c1_bf16") / r("bare_t1_bf16"),
        "ray1_vs_bare_2threads_fp32": r("ray1_c2_fp32") / r("bare_t2_fp32"),
        "ray1_vs_bare_1thread_fp32_per_cpu_s": r("ray1_c1_fp32", "train_samples_per_cpu_s") / r("bare_t1_fp32", "train_samples_per_cpu_s"),
        "ray2_vs_ray1_fp32": r("ray2_fp32") / r("ray1_c1_fp32"),
        "ray2_vs_ray1_bf16": r("ray2_bf16") / r("ray1_c1_bf16"),
        "ray2_vs_bare_2threads_fp32": r("ray2_fp32") / r("bare_t2_fp32"),
        "bf16_vs_fp32_bare_1thread": r("bare_t1_bf16") / r("bare_t1_fp32"),
        "bf16_vs_fp32_ray1": r("ray1_c1_bf16") / r("ray1_c1_fp32"),
        "bf16_vs_fp32_ray2": r("ray2_bf16") / r("ray2_fp32"),
        "bare_drift_end_vs_start": r("bare_t1_fp32_again") / r("bare_t1_fp32"),
    }
    return {k: round(v, 3) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="lstm")
    p.add_argument("--n-train", type=int, default=16384)
    p.add_argument("--n-val", type=int, default=2048)
    p.add_argument("--seq-len", type=int, default=60)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import ray

    ray.init(num_cpus=2, object_store_memory=1024**3, log_to_driver=False, include_dashboard=True)
    train = make_arrays(args.n_train, args.seq_len, args.features, 100, args.seed)
    val = make_arrays(args.n_val, args.seq_len, args.features, 100, args.seed + 1)
    datasets = (to_dataset(train), to_dataset(val), args.features, {})
    common = dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, early_stopping_patience=0, baselines=False)
    started, load_before = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="train_bench_") as tmp:
        runs = run_all(MODELS[args.model], common, train, val, datasets, Path(tmp))
    ray.shutdown()
    for run in runs.values():
        for k, v in run.items():
            if isinstance(v, float):
                run[k] = round(v, 4 if "loss" in k or "share" in k else 1)
    emit({
        "config": {**vars(args), "cpus": os.cpu_count(), "torch": torch.__version__, "ray": ray.__version__},
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "wall_s": round(time.time() - started, 1),
        "ratios": ratios(runs),
        "runs": runs,
    })


if __name__ == "__main__":
    main()
