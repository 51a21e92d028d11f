"""What the configured run needs from the machine, and which of it the environment lacks.

Compute only: takes the environment sections (:mod:`app.machine.probe`) and the config.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.config import stages_of

if TYPE_CHECKING:
    from app.config import AppConfig

MIN_FREE_DISK_MB = 1024  # below this the store and the run folders may not fit
TRAINING_STAGES = ("train", "tune")


def wants_gpu(cfg: AppConfig) -> bool | None:
    """``train.use_gpu`` as True, False or None (``auto``: whatever the cluster has)."""
    value = cfg.train.use_gpu
    if isinstance(value, str):
        value = {"true": True, "false": False}.get(value.strip().lower())
    return value if isinstance(value, bool) else None


def cluster_gpus(env: dict[str, Any]) -> float:
    """The GPUs of the running Ray cluster, else those this process sees (what a local Ray gets)."""
    ray = env.get("ray") or {}
    if ray.get("started"):
        return float(ray.get("gpus") or 0)
    return float(len(env.get("gpus") or []))


def _gpu(env: dict[str, Any], cfg: AppConfig, stages: list[str]) -> list[str]:
    if wants_gpu(cfg) is not True or not any(s in stages for s in TRAINING_STAGES):
        return []
    if cluster_gpus(env) > 0:
        return []
    where = "the Ray cluster" if (env.get("ray") or {}).get("started") else "this machine"
    return [f"a GPU (train.use_gpu=true, {where} has none; set train.use_gpu=auto or false)"]


def _cpu_bf16(env: dict[str, Any], cfg: AppConfig, stages: list[str]) -> list[str]:
    """``train.amp`` auto/bf16 picks bf16 on CPUs: the configured model must run in it here."""
    on_cpu = wants_gpu(cfg) is False or cluster_gpus(env) == 0
    if (not on_cpu or cfg.train.amp not in ("auto", "bf16") or not any(s in stages for s in TRAINING_STAGES)
            or (env.get("torch") or {}).get("cpu_bf16_model") is not False):
        return []
    return [f"bf16 kernels on this CPU for {cfg.model['_target_'].rsplit('.', 1)[-1]} (train.amp={cfg.train.amp} "
            "trains in bf16 on CPUs; set train.amp=off)"]


def _redis(env: dict[str, Any]) -> list[str]:
    redis = env.get("redis") or {}
    if redis.get("configured") and not redis.get("reachable"):
        return [f"Redis at {redis.get('address')} ({redis.get('error', 'no answer')}; start it, or set "
                "redis.url='' to pace and cache without it)"]
    return []


def _kis(env: dict[str, Any], stages: list[str]) -> list[str]:
    kis = env.get("kis") or {}
    if "collect" not in stages or kis.get("source") != "kis":
        return []
    lacking = [n for n in kis.get("unset", []) if n != "KIS_ACCOUNT"]
    return [f"KIS credentials ({', '.join(lacking)} not set; export them or use data=sim)"] if lacking else []


def _disk(env: dict[str, Any]) -> list[str]:
    disk = env.get("disk") or {}
    if disk.get("free_mb") is not None and disk["free_mb"] < MIN_FREE_DISK_MB:
        return [f"disk space ({disk['free_mb']} MB free at {disk['path']}, want {MIN_FREE_DISK_MB} MB or more)"]
    return []


def run_stages_of(cfg: AppConfig) -> list[str]:
    """The stages whose needs count: those named beside ``doctor``, or every stage when it is alone."""
    named = [s for s in stages_of(cfg) if s != "doctor"]
    return named or ["collect", "features", *TRAINING_STAGES, "evaluate", "report"]


def missing(env: dict[str, Any], cfg: AppConfig) -> list[str]:
    """One short phrase per thing the configured stages need and this machine lacks."""
    stages = run_stages_of(cfg)
    return _gpu(env, cfg, stages) + _cpu_bf16(env, cfg, stages) + _redis(env) + _kis(env, stages) + _disk(env)
