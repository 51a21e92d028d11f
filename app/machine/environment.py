"""The environment check: gather the probes into ``environment.json`` and a short log block."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.kis.credentials import credentials_available
from app.machine import probe
from app.run_folder import ENVIRONMENT, RunFolder

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)

ENV_FILE = ENVIRONMENT
SECTIONS = ("python", "torch", "cuda", "gpus", "ray", "redis", "kis", "disk", "market")


def data_source(cfg: AppConfig) -> str:
    """``data.source`` with ``auto`` resolved the way collection resolves it (credentials or not)."""
    source = str(cfg.data.source)
    if source == "auto":
        return "kis" if credentials_available() else "sim"
    return source


def gather(cfg: AppConfig) -> dict[str, Any]:
    """Every section of ``environment.json``; Ray's cluster figures only if this process runs Ray."""
    from app.collect.collect import redis_url_of

    torch_, cuda, gpus = probe.torch_info()
    torch_["cpu_bf16_model"] = probe.cpu_bf16_works(cfg.model)
    return {"python": probe.python_info(), "torch": torch_, "cuda": cuda, "gpus": gpus, "ray": probe.ray_info(),
            "redis": probe.redis_info(redis_url_of(cfg)), "kis": probe.kis_info(data_source(cfg)),
            "disk": probe.disk_info(cfg.store.root), "market": probe.market_info()}


def write(run_dir: Path, env: dict[str, Any]) -> Path:
    """Replace ``environment.json`` atomically (a reader never sees half a file)."""
    return RunFolder(run_dir).write_json(ENV_FILE, env)


def _gpu_text(env: dict[str, Any]) -> str:
    cuda = env["cuda"]
    if not env["gpus"]:
        return "no GPU" + ("" if env["torch"]["build"] == "cpu" else " visible")
    names = ", ".join(f"{g['name']} ({g['memory_mb'] / 1024:.0f} GiB)" for g in env["gpus"])
    return f"CUDA {cuda['version']}, cuDNN {cuda['cudnn']}, GPUs: {names}"


def _ray_text(ray: dict[str, Any]) -> str:
    if ray.get("started"):
        return f"Ray {ray['version']}: {ray['nodes']} node(s), {ray['cpus']:g} CPUs, {ray['gpus']:g} GPUs"
    return f"Ray {ray['version']} (not started yet; {ray['local_cpus']} CPUs here)"


def _redis_text(redis: dict[str, Any]) -> str:
    if not redis.get("configured"):
        return "Redis: not configured"
    if redis.get("reachable"):
        return f"Redis {redis.get('version')} at {redis['address']}"
    return f"Redis at {redis['address']}: no answer ({redis.get('error')})"


def lines(env: dict[str, Any]) -> list[str]:
    """The log block: four lines, never a secret (credentials appear as variable names)."""
    t, kis, disk, market = env["torch"], env["kis"], env["disk"], env["market"]
    creds = ", ".join(kis["set"]) + " set" if kis["set"] else "no KIS credentials set"
    nxt = f", next open {market['next_open']}" if market.get("next_open") and market["state"] != "open" else ""
    return [
        f"environment: Python {env['python']['version']}, torch {t['version']} ({t['build']} build), {_gpu_text(env)}",
        f"environment: {_ray_text(env['ray'])}; {_redis_text(env['redis'])}",
        f"environment: data source {kis['source']}, {creds}; {disk['free_mb'] / 1024:,.1f} GiB free at {disk['path']}",
        f"environment: KRX {market['state']} at {market['now']}{nxt}",
    ]


def check(cfg: AppConfig, run_dir: Path) -> dict[str, Any]:
    """Probe, write ``environment.json`` into the run folder and log the block; returns the sections."""
    env = gather(cfg)
    write(run_dir, env)
    for line in lines(env):
        log.info("%s", line)
    return env


def refresh_ray(run_dir: Path) -> None:
    """After the stages: the cluster's CPUs and GPUs, now that Ray runs (if any stage started it)."""
    folder, ray = RunFolder(run_dir), probe.ray_info()
    if folder.exists(ENV_FILE) and ray.get("started"):
        folder.merge_json(ENV_FILE, {"ray": ray})
