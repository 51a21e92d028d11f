"""What running as a Ray job costs: the same small experiment locally and via ``ray job submit``.

``python -m bench.cluster_overhead [--experiment lstm]``: first the baseline, ``python -m app.main
+experiment=<e>`` in a subprocess with a local Ray instance of 2 CPUs; then a 2-node cluster on this
machine (1 CPU each, tests/cluster_testutil.py) and the same command submitted with
``--working-dir .``. Each run collects into a fresh store of its own, so both do the same work.
Prints JSON: wall seconds of each, the difference (goal: the job costs at most 30 s more), the
cluster's start-up (not counted in the job's time) and the load average before and after.

Then, on the same cluster, node loss: a 2-worker training job (tests/cluster_fit_probe.py, one worker
per node) has the worker node's raylet killed by PID once the controller has its epoch-1 checkpoint;
``resume_after_loss_s`` is the time from the kill to the restored worker group loading that
checkpoint (goal: at most 30 s), read from the run's ``metrics.json`` restore record.
``--health-check-period-ms`` / ``--health-check-failure-threshold`` start the cluster with those
GCS health-check settings (Ray's defaults: 3000 ms, 5 misses, so a dead node is declared some
15 s after it stops answering); the JSON records the settings used.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import emit
from tests.cluster_testutil import LocalCluster

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["data.limit=6", "data.start=2023-01-02", "train.epochs=2", "data.sim.rate_limit=0"]


def run_local(experiment: str, root: Path) -> float:
    """The baseline: the command as a user runs it on a laptop, sized like the cluster (2 CPUs)."""
    args = [sys.executable, "-m", "app.main", f"+experiment={experiment}", *SMALL, "ray.num_cpus=2",
            f"storage.root={root}"]
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"local run failed:\n{proc.stderr[-3000:]}")
    return seconds


def run_job(cluster: LocalCluster, experiment: str, root: Path) -> tuple[float, str]:
    """Job seconds (submit to finish) and the run folder the job named."""
    job = cluster.submit([sys.executable, "-m", "app.main", f"+experiment={experiment}", "ray.address=auto",
                          *SMALL, f"storage.job_root={root}"], working_dir=ROOT, timeout_s=900)
    if job.status != 0:
        raise SystemExit(f"job failed:\n{job.log[-3000:]}")
    return job.seconds, job.run_folders[-1]


def run_node_loss(cluster: LocalCluster, run_dir: Path, epochs: int = 6) -> dict:
    """Kill the worker node mid-training; seconds from the kill to the restored group's start."""
    proc = cluster.submit_async([sys.executable, "-m", "tests.cluster_fit_probe", str(run_dir), str(epochs)], ROOT,
                                f"node-loss-{int(time.time())}")
    try:
        log = run_dir / "run.log"
        deadline = time.time() + 600
        while not (log.exists() and f"epoch 1/{epochs}" in log.read_text()):
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"training job ended or stalled before epoch 1:\n{proc.stdout.read()[-3000:]}")
            time.sleep(0.2)
        killed_at = cluster.kill_worker_node()
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        raise SystemExit(f"training job failed after the node loss:\n{out[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    restore = metrics["restores"][0]
    return {"resume_after_loss_s": round(restore["at"] - killed_at, 1), "goal_max_resume_s": 30,
            "restored_from_epoch": restore["from_epoch"], "workers_after_loss": restore["workers"],
            "finished_s_after_loss": round(time.time() - killed_at, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="lstm")
    parser.add_argument("--node-loss-only", action="store_true", help="skip the local run and the job")
    parser.add_argument("--health-check-period-ms", type=int, help="RAY_health_check_period_ms of the cluster")
    parser.add_argument("--health-check-failure-threshold", type=int,
                        help="RAY_health_check_failure_threshold of the cluster")
    args = parser.parse_args()
    health = {k: str(v) for k, v in {"RAY_health_check_period_ms": args.health_check_period_ms,
                                     "RAY_health_check_failure_threshold": args.health_check_failure_threshold
                                     }.items() if v is not None}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        local_s = 0.0 if args.node_loss_only else run_local(args.experiment, Path(tmp) / "local")
        started = time.perf_counter()
        with LocalCluster(node_env=health) as cluster:
            up_s = time.perf_counter() - started
            job_s, run_folder = (0.0, "") if args.node_loss_only else run_job(cluster, args.experiment,
                                                                               Path(tmp) / "job")
            loss = run_node_loss(cluster, Path(tmp) / "node-loss")
    if args.node_loss_only:
        emit({"node_loss": loss, "health_check": health or "Ray's defaults", "cluster_start_s": round(up_s, 1),
              "loadavg_before": [round(x, 2) for x in load_before],
              "loadavg_after": [round(x, 2) for x in os.getloadavg()]})
        return
    emit({
        "experiment": args.experiment, "overrides": SMALL,
        "baseline_local_s": round(local_s, 1), "job_s": round(job_s, 1),
        "job_minus_local_s": round(job_s - local_s, 1), "goal_max_extra_s": 30,
        "cluster_start_s": round(up_s, 1), "job_run_folder": run_folder, "node_loss": loss,
        "health_check": health or "Ray's defaults",
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    })


if __name__ == "__main__":
    main()
