"""Where training runs: ``train.use_gpu`` resolved against the cluster, and the device of a process.

``auto`` uses the GPUs the Ray cluster has (none: the CPU); ``true`` needs one and says so
before any work starts; ``false`` keeps everything on the CPU.
"""
from __future__ import annotations

import dataclasses

import torch

from app.errors import ConfigError
from app.train.config import TrainConfig

NO_GPU_HINT = "set train.use_gpu=auto (the GPUs there are) or false, or run where Ray has a GPU"


def resolve_use_gpu(cfg: TrainConfig, cluster_gpus: float) -> TrainConfig:
    """``cfg`` with ``use_gpu`` a bool for a cluster with ``cluster_gpus`` GPUs."""
    if cfg.use_gpu is True and cluster_gpus <= 0:
        raise ConfigError("train.use_gpu=true but the Ray cluster has no GPU", NO_GPU_HINT)
    use = cluster_gpus > 0 if cfg.use_gpu == "auto" else bool(cfg.use_gpu)
    return dataclasses.replace(cfg, use_gpu=use)


def ray_gpus() -> float:
    """The GPUs of the Ray cluster this process runs in (Ray must be up)."""
    import ray

    return float(ray.cluster_resources().get("GPU", 0))


def select_device(use_gpu: bool) -> torch.device:
    """The device of a process Ray gave a GPU (it sees only its own: ``cuda:0``), else the CPU."""
    if not use_gpu:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("train.use_gpu is on but this process sees no CUDA device", NO_GPU_HINT)
    return torch.device("cuda", 0)


def check_local_gpu(use_gpu: "bool | str", joins_cluster: bool) -> None:
    """Config time: ``use_gpu=true`` with a local Ray needs a GPU here (a cluster is checked when joined)."""
    if use_gpu is True and not joins_cluster and not torch.cuda.is_available():
        raise ConfigError("train.use_gpu=true but this machine has no CUDA GPU", NO_GPU_HINT)


def peak_gpu_memory(device: torch.device) -> dict[str, float]:
    """Peak CUDA memory this process allocated and reserved on ``device`` so far (empty on a CPU)."""
    if device.type != "cuda":
        return {}
    return {"gpu_peak_allocated_mb": round(torch.cuda.max_memory_allocated(device) / 1024**2, 1),
            "gpu_peak_reserved_mb": round(torch.cuda.max_memory_reserved(device) / 1024**2, 1)}
