"""Reads the facts of this machine a run depends on; nothing here starts Ray or changes state.

Every section is a small JSON-ready dict. Secrets are never read into it: credentials are
reported as the names of the variables that are set, a Redis URL as host, port and db only.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.kis.credentials import ENV_ACCOUNT, ENV_APP_KEY, ENV_APP_SECRET

REDIS_TIMEOUT_S = 1.0  # a Redis that does not answer within this is reported unreachable


def python_info() -> dict[str, Any]:
    return {"version": platform.python_version(), "executable": sys.executable}


def torch_info() -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The ``torch``, ``cuda`` and ``gpus`` sections (the GPUs this process can see)."""
    import torch

    cuda_build = torch.version.cuda is not None
    available = bool(cuda_build and torch.cuda.is_available())
    cudnn = torch.backends.cudnn.version() if available and torch.backends.cudnn.is_available() else None
    gpus = []
    for i in range(torch.cuda.device_count() if available else 0):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"index": i, "name": props.name, "memory_mb": round(props.total_memory / 1024**2),
                     "capability": f"{props.major}.{props.minor}"})
    build = "cuda" if cuda_build else "cpu"
    return ({"version": torch.__version__, "build": build, "threads": torch.get_num_threads()},
            {"available": available, "version": torch.version.cuda, "cudnn": cudnn,
             "bf16": bool(available and torch.cuda.is_bf16_supported())}, gpus)


def cpu_bf16_works(model_cfg: Any) -> bool | None:
    """Whether the configured model runs a forward pass under bf16 autocast on this CPU.

    Some CPUs lack oneDNN's bf16 kernels for a layer (the LSTM, on CPUs without AVX-512 bf16),
    and ``train.amp=auto`` picks bf16 on a CPU. None when the model cannot be built here.
    """
    import torch

    from app.models.factory import build_model

    try:
        model = build_model(model_cfg, 4)
    except Exception:  # a bad model node is the config check's to report
        return None
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(torch.zeros(2, 3, 4))
    except RuntimeError:
        return False
    return True


def ray_info() -> dict[str, Any]:
    """Ray's version; the cluster's CPUs and GPUs only when this process already runs Ray."""
    out: dict[str, Any] = {"version": metadata.version("ray"), "started": False,
                           "local_cpus": os.cpu_count()}
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        total = ray.cluster_resources()
        out.update(started=True, nodes=len([n for n in ray.nodes() if n.get("Alive")]),
                   cpus=float(total.get("CPU", 0)), gpus=float(total.get("GPU", 0)))
    return out


def redis_info(url: str) -> dict[str, Any]:
    """Whether Redis answers (and its version); the URL is shown without user or password."""
    if not url:
        return {"configured": False, "reachable": None}
    parts = urlsplit(url)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{(parts.path or '/0').lstrip('/') or 0}"
    out: dict[str, Any] = {"configured": True, "address": where, "reachable": False}
    import redis

    client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    try:
        out.update(reachable=True, version=client.info("server").get("redis_version"))
    except (redis.RedisError, OSError) as exc:
        out["error"] = type(exc).__name__  # the exception text may echo the URL
    finally:
        client.close()
    return out


def kis_info(source: str, environ: os._Environ | dict[str, str] | None = None) -> dict[str, Any]:
    """Which credential variables are set, by name only, and the source the run resolves to."""
    env = os.environ if environ is None else environ
    names = (ENV_APP_KEY, ENV_APP_SECRET, ENV_ACCOUNT)
    return {"source": source, "set": [n for n in names if env.get(n)], "unset": [n for n in names if not env.get(n)]}


def disk_info(root: str | Path) -> dict[str, Any]:
    """Free space on the file system that holds ``root`` (its nearest existing parent)."""
    path = Path(root).expanduser().resolve()
    probe = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    usage = shutil.disk_usage(probe)
    return {"path": str(path), "free_mb": round(usage.free / 1024**2), "total_mb": round(usage.total / 1024**2)}


def market_info(now: dt.datetime | None = None) -> dict[str, Any]:
    from app.krx.calendar import session_state

    return session_state(now)
