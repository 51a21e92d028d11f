"""What running as a Ray job costs: the same small experiment locally and via ``ray job submit``.

``python -m bench.cluster_overhead [--experiment lstm]``: first the baseline, ``python -m app.main
+experiment=<e>`` in a subprocess with a local Ray instance of 2 CPUs; then a 2-node cluster on this
machine (1 CPU each, tests/cluster_testutil.py) and the same command submitted with
``--working-dir .``. Each run collects into a fresh store of its own, so both do the same work.
Prints JSON: wall seconds of each, the difference (goal: the job costs at most 30 s more), the
cluster's start-up (not counted in the job's time) and the load average before and after.
"""
from __future__ import annotations

import argparse
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


def run_job(experiment: str, root: Path) -> tuple[float, float, str]:
    """Cluster start-up seconds, job seconds (submit to finish), and the run folder the job named."""
    started = time.perf_counter()
    with LocalCluster() as cluster:
        up = time.perf_counter() - started
        job = cluster.submit([sys.executable, "-m", "app.main", f"+experiment={experiment}", "ray.address=auto",
                              *SMALL, f"storage.job_root={root}"], working_dir=ROOT, timeout_s=900)
    if job.status != 0:
        raise SystemExit(f"job failed:\n{job.log[-3000:]}")
    return up, job.seconds, job.run_folders[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="lstm")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        local_s = run_local(args.experiment, Path(tmp) / "local")
        up_s, job_s, run_folder = run_job(args.experiment, Path(tmp) / "job")
    emit({
        "experiment": args.experiment, "overrides": SMALL,
        "baseline_local_s": round(local_s, 1), "job_s": round(job_s, 1),
        "job_minus_local_s": round(job_s - local_s, 1), "goal_max_extra_s": 30,
        "cluster_start_s": round(up_s, 1), "job_run_folder": run_folder,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    })


if __name__ == "__main__":
    main()
