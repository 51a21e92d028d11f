"""One ``ray.init`` per process, from config: a local instance sized to the machine, or a cluster."""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config import RayConfig
    from app.storage import StorageConfig


log = logging.getLogger(__name__)


def init_ray(ray_cfg: RayConfig, storage_cfg: StorageConfig | None = None) -> None:
    """Start or join Ray once; later calls are no-ops so every stage can ask for it. Joining a
    cluster of several nodes with ``storage_cfg`` local to each node warns."""
    import ray

    if ray.is_initialized():
        return
    from app import console

    kwargs: dict = {"include_dashboard": bool(ray_cfg.include_dashboard), "log_to_driver": True}
    if console.routing():
        kwargs["runtime_env"] = {"worker_process_setup_hook": console.WORKER_SETUP_HOOK}
    address = ray_cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        kwargs["address"] = address  # a cluster owns its resources: sizing flags would be refused
    else:
        if ray_cfg.num_cpus:
            kwargs["num_cpus"] = int(ray_cfg.num_cpus)
        kwargs["object_store_memory"] = int(ray_cfg.object_store_memory_mb) * 1024**2
    console.quiet_ray()
    ctx = ray.init(**kwargs)
    console.route_worker_output()
    url = getattr(ctx, "dashboard_url", None)
    log.info("Ray %s: %s", "joined" if address else "started", f"dashboard http://{url}" if url else "no dashboard")
    if address and storage_cfg is not None:
        from app.storage import warn_if_unshared

        warn_if_unshared(sum(1 for n in ray.nodes() if n.get("Alive")), storage_cfg)
