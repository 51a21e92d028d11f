"""GPU check: the default LSTM and Transformer trained for a few epochs in fp32, bf16 and fp16.

One process, no Ray: the pipeline's own loop (:func:`app.train.loop.train_epoch` with its AMP
policy, fp16 through a GradScaler) on synthetic windows kept in page-locked host memory and
copied to the device per batch with ``non_blocking=True``, as the Ray workers do. For each model
and precision: steady samples/s (median over the epochs after the first), peak GPU memory
(allocated and reserved by the caching allocator) and the final training loss against fp32's.
The CPU figure of the same loop (fp32, this process's threads) is the baseline measured in the
same run. Without a GPU only the CPU figures are printed, and ``gpu`` says so.

Sized to finish in well under 5 minutes on one GPU; prints one JSON object.
Example: ``python bench/gpu_check.py`` (``--epochs 4 --n-train 65536 --cpu-n-train 4096``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import emit  # noqa: E402

from app.errors import ConfigError  # noqa: E402
from app.models.factory import build_model  # noqa: E402
from app.train.amp import resolve_amp  # noqa: E402
from app.train.config import TrainConfig  # noqa: E402
from app.train.loop import Optimization, make_loss, seed_everything, steps_per_epoch, train_epoch  # noqa: E402

MODELS = ("lstm", "transformer")  # the configs in conf/model/, as a run builds them
PRECISIONS = {"fp32": "off", "bf16": "bf16", "fp16": "fp16"}


def model_cfg(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / f"{name}.yaml"))  # type: ignore


def windows(n: int, seq_len: int, n_features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable target (a linear signal in the last step plus noise), so the losses mean something."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, seq_len, n_features)).astype(np.float32)
    w = rng.standard_normal(n_features).astype(np.float32) / np.sqrt(n_features)
    y = (x[:, -1] @ w + 0.5 * rng.standard_normal(n)).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, epoch: int, pin: bool):
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        bx, by = x[idx], y[idx]
        yield ({"x": bx.pin_memory(), "y": by.pin_memory()} if pin else {"x": bx, "y": by})


def train_one(name: str, precision: str, device: torch.device, data: tuple, args: argparse.Namespace) -> dict:
    """A few epochs of one model in one precision on one device: throughput, memory, final loss."""
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, amp=PRECISIONS[precision], seed=args.seed,
                      early_stopping_patience=0, baselines=False)
    seed_everything(cfg.seed)
    amp = resolve_amp(cfg.amp, device)  # fp16 on a CPU is refused here, as in the pipeline
    model = build_model(model_cfg(name), data[0].shape[-1]).to(device)
    opt = Optimization(model, cfg, amp, steps_per_epoch(len(data[0]), cfg) * cfg.epochs)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rates, loss = [], float("nan")
    for epoch in range(cfg.epochs):
        stats = train_epoch(model, batches(*data, cfg.batch_size, epoch, device.type == "cuda"), opt,
                            make_loss(cfg), amp, device=device)
        rates.append(stats.samples / stats.seconds)
        loss = stats.loss
    out = {"samples_per_s": round(float(np.median(rates[1:] or rates)), 1), "final_loss": round(loss, 5),
           "amp": amp.name, "grad_scaler": amp.use_scaler}
    if device.type == "cuda":
        out["peak_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 1024**2, 1)
        out["peak_reserved_mb"] = round(torch.cuda.max_memory_reserved(device) / 1024**2, 1)
    return out


def attempt(*run_args) -> dict:
    try:
        return train_one(*run_args)
    except (ConfigError, RuntimeError) as exc:  # e.g. a kernel this device or build lacks
        return {"error": " ".join(str(exc).split())[:300]}


def compare(runs: dict) -> dict:
    """Each precision's speed and final loss relative to fp32 of the same model on the same device."""
    out = {}
    for key, run in runs.items():
        name, device, precision = key.split("/")
        base = runs.get(f"{name}/{device}/fp32", {})
        if precision == "fp32" or "error" in run or "error" in base:
            continue
        out[f"{key}_speed_vs_fp32"] = round(run["samples_per_s"] / base["samples_per_s"], 3)
        out[f"{key}_loss_vs_fp32"] = round(run["final_loss"] / base["final_loss"], 4)
    for name in MODELS:
        gpu, cpu = runs.get(f"{name}/cuda/fp32", {}), runs.get(f"{name}/cpu/fp32", {})
        if "samples_per_s" in gpu and "samples_per_s" in cpu:
            out[f"{name}_cuda_fp32_speed_vs_cpu_fp32"] = round(gpu["samples_per_s"] / cpu["samples_per_s"], 1)
    return out


def gpu_info() -> dict:
    if not torch.cuda.is_available():
        return {"available": False, "note": "no CUDA device: CPU figures only, nothing measured on a GPU"}
    props = torch.cuda.get_device_properties(0)
    return {"available": True, "name": props.name, "memory_mb": round(props.total_memory / 1024**2),
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "bf16": torch.cuda.is_bf16_supported()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--n-train", type=int, default=65536, help="windows per epoch on the GPU")
    p.add_argument("--cpu-n-train", type=int, default=4096, help="windows per epoch of the CPU baseline")
    p.add_argument("--seq-len", type=int, default=20)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    started, load_before = time.time(), os.getloadavg()
    runs: dict[str, dict] = {}
    if torch.cuda.is_available():
        data = windows(args.n_train, args.seq_len, args.features, args.seed)
        for name in MODELS:
            for precision in PRECISIONS:
                runs[f"{name}/cuda/{precision}"] = attempt(name, precision, torch.device("cuda", 0), data, args)
    cpu_data = windows(args.cpu_n_train, args.seq_len, args.features, args.seed)
    for name in MODELS:
        runs[f"{name}/cpu/fp32"] = attempt(name, "fp32", torch.device("cpu"), cpu_data, args)
    emit({"config": {**vars(args), "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
                     "cpus": os.cpu_count()},
          "gpu": gpu_info(), "load_average_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
          "wall_s": round(time.time() - started, 1), "ratios": compare(runs), "runs": runs})


if __name__ == "__main__":
    main()
