"""A real 2-node Ray cluster on one machine, for the job-submission test and bench/cluster_overhead.py.

Both nodes run from one private temp dir (as two ``ray start`` on one machine do by default), on
ports of their own; the second node has its own ``--dashboard-agent-listen-port``. Token
authentication stays on (Ray's default): every CLI call runs with ``RAY_AUTH_MODE=token``.
:meth:`LocalCluster.stop` ends, by PID, exactly the processes whose command line names this
cluster's temp dir, and their children: it never touches a Ray instance it did not start.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
RUN_FOLDER = re.compile(r"^(?:.*\] - )?run folder: (\S+)", re.MULTILINE)  # the console line, or run.log's


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _port_base() -> int:
    """The first of 400 ports (20 service ports, then two 100-port worker ranges) that look free."""
    for _ in range(200):
        base = random.randrange(30000, 59000, 400)
        if all(_port_free(base + i) for i in range(0, 400, 7)):
            return base
    raise RuntimeError("no free port range for a local Ray cluster")


def env() -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_DEDUP_LOGS": "0"}


@dataclass
class JobRun:
    status: int
    seconds: float
    log: str
    run_folders: list[str] = field(default_factory=list)  # every "run folder: X" line, in order


def _each(procs: list[psutil.Process], action: str) -> None:
    """``terminate`` or ``kill`` every process of ``procs`` still there (one may have exited meanwhile)."""
    for p in procs:
        try:
            getattr(p, action)()
        except psutil.Error:
            pass


@dataclass
class LocalCluster:
    cpus_per_node: int = 1
    object_store_mb: int = 300
    temp_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(
        prefix="krxc-", dir=os.environ.get("RAY_TMPDIR", "/tmp"))))  # short: Ray's socket paths are capped
    base: int = field(default_factory=_port_base)
    #: extra environment of every node's processes, e.g. Ray's GCS health-check settings
    #: (``RAY_health_check_period_ms``, ``RAY_health_check_failure_threshold``)
    node_env: dict[str, str] = field(default_factory=dict)

    @property
    def gcs(self) -> str:
        return f"127.0.0.1:{self.base}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.base + 1}"

    def _node_flags(self, offset: int) -> list[str]:
        b, w = self.base + offset, self.base + 20 + 100 * (offset // 10)
        return [f"--num-cpus={self.cpus_per_node}", f"--temp-dir={self.temp_dir}",
                f"--object-store-memory={self.object_store_mb * 1024**2}",
                f"--node-manager-port={b + 3}", f"--object-manager-port={b + 4}",
                f"--dashboard-agent-listen-port={b + 5}", f"--dashboard-agent-grpc-port={b + 6}",
                f"--metrics-export-port={b + 7}", f"--runtime-env-agent-port={b + 8}",
                f"--min-worker-port={w}", f"--max-worker-port={w + 99}"]

    def start(self, attempts: int = 2) -> "LocalCluster":
        """The head, then a second node joining it; a node that times out registering (Ray waits 30 s,
        which a machine at load 30+ can exceed) is retried on fresh ports; raises with Ray's output."""
        for attempt in range(attempts):
            try:
                return self._start_once()
            except RuntimeError:
                if attempt == attempts - 1:
                    self.stop()
                    raise
                self.base = _port_base()
        return self

    def _start_once(self) -> "LocalCluster":
        head = [RAY, "start", "--head", f"--port={self.base}", f"--dashboard-port={self.base + 1}",
                f"--ray-client-server-port={self.base + 2}", "--include-dashboard=true", *self._node_flags(0)]
        second = [RAY, "start", f"--address={self.gcs}", *self._node_flags(10)]
        # Ray's own actors (Train's placement-group cleaner) look for "the" cluster when none is named:
        # on a machine running other Ray instances they must inherit this one's address
        node_env = {**env(), **self.node_env, "RAY_ADDRESS": self.gcs}
        for cmd in (head, second):
            self._ray_start(cmd, node_env)
        return self

    def _ray_start(self, cmd: list[str], node_env: dict[str, str]) -> None:
        proc = subprocess.run(cmd, env=node_env, capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            self.stop(keep_temp_dir=True)
            raise RuntimeError(f"{' '.join(cmd[:3])} failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")

    def _submit_cmd(self, entrypoint: list[str], working_dir: Path | None, runtime_env: dict | None,
                    submission_id: str | None) -> list[str]:
        cmd = [RAY, "job", "submit", "--address", self.dashboard]
        if working_dir is not None:
            cmd += ["--working-dir", "."]
        if runtime_env is not None:
            cmd += ["--runtime-env-json", json.dumps(runtime_env)]
        if submission_id is not None:
            cmd += ["--submission-id", submission_id]
        return [*cmd, "--", *entrypoint]

    def submit(self, entrypoint: list[str], working_dir: Path | None, timeout_s: float,
               runtime_env: dict | None = None, submission_id: str | None = None) -> JobRun:
        """``ray job submit [--working-dir]`` and wait for the job; its log is what ``ray job logs`` shows."""
        started = time.perf_counter()
        proc = subprocess.run(self._submit_cmd(entrypoint, working_dir, runtime_env, submission_id),
                              cwd=working_dir or self.temp_dir, env=env(), capture_output=True, text=True,
                              timeout=timeout_s)
        seconds = time.perf_counter() - started
        log = proc.stdout + proc.stderr
        return JobRun(proc.returncode, seconds, log, RUN_FOLDER.findall(log))

    def submit_async(self, entrypoint: list[str], working_dir: Path | None, submission_id: str,
                     runtime_env: dict | None = None) -> subprocess.Popen:
        """``ray job submit`` in the background (it follows the job's log until the job ends)."""
        return subprocess.Popen(self._submit_cmd(entrypoint, working_dir, runtime_env, submission_id),
                                cwd=working_dir or self.temp_dir, env=env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def job(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
        """``ray job <args> --address <dashboard>`` (e.g. ``"stop", id`` or ``"logs", id``)."""
        return subprocess.run([RAY, "job", *args, "--address", self.dashboard], env=env(), capture_output=True,
                              text=True, timeout=timeout_s)

    def worker_raylet(self) -> psutil.Process:
        """The second node's raylet (found by its node-manager port)."""
        mark = f"--node_manager_port={self.base + 13}"
        for proc in self._processes():
            try:
                if mark in proc.cmdline():
                    return proc
            except psutil.Error:
                continue
        raise RuntimeError("the worker node's raylet is not running")

    def kill_worker_node(self) -> float:
        """kill -9 the second node's raylet, then the processes it ran (a lost machine takes them all);
        returns the time of the kill (``time.time()``)."""
        raylet = self.worker_raylet()
        children = raylet.children(recursive=True)
        raylet.kill()
        killed_at = time.time()
        _each(children, "kill")
        psutil.wait_procs([raylet, *children], timeout=10)
        return killed_at

    def restart_worker_node(self) -> None:
        """The second node's ``ray start`` again, on its own ports (after :meth:`kill_worker_node`)."""
        self._ray_start([RAY, "start", f"--address={self.gcs}", *self._node_flags(10)],
                        {**env(), **self.node_env, "RAY_ADDRESS": self.gcs})

    def _processes(self) -> list[psutil.Process]:
        me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
        mark = str(self.temp_dir)
        gcs = f":{self.base}"  # the head's Ray client server names only the GCS address
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["cmdline"]):
            try:
                args = proc.info["cmdline"] or []
                if proc.pid not in me and any(mark in a or (a.startswith("--address=") and a.endswith(gcs))
                                              for a in args):
                    for p in (proc, *proc.children(recursive=True)):
                        found.setdefault(p.pid, p)
            except psutil.Error:
                continue
        return [p for pid, p in found.items() if pid not in me]

    def stop(self, keep_temp_dir: bool = False) -> int:
        """SIGTERM, then SIGKILL after 10 s, to this cluster's processes only; returns how many there were."""
        procs = self._processes()
        _each(procs, "terminate")
        _, alive = psutil.wait_procs(procs, timeout=10)
        _each(alive, "kill")  # Ray's agents may ignore SIGTERM
        psutil.wait_procs(alive, timeout=10)
        if not keep_temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        return len(procs)

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SharedCluster:
    """One :class:`LocalCluster` for several test modules (each start costs ~7 s and each stop ~12 s):
    calling it starts the cluster on first use and brings back a worker node a test took away;
    :meth:`stop` ends it (the last module using it does, so later tests run without it)."""

    def __init__(self) -> None:
        self.cluster: LocalCluster | None = None

    def __call__(self) -> LocalCluster:
        if self.cluster is None:
            self.cluster = LocalCluster().start()
            time.sleep(5)  # a second node that failed to register exits within seconds of `ray start`
        try:
            self.cluster.worker_raylet()
        except RuntimeError:
            self.cluster.restart_worker_node()
        return self.cluster

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
