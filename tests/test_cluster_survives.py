"""What a real 2-node cluster does to a run, on this one machine: actors and nodes are lost, jobs are
stopped, secrets are put where Ray shows them, Redis is asked from every node.

One cluster serves the whole module and the job test before it (its start-up is most of the cost);
the node-loss tests run last because they take the second node away. Every process is stopped by PID at the end, even on failure.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from app.collect.store import BarStore
from tests.cluster_testutil import LocalCluster, env
from tests.conftest import ROOT, shared_redis_url
from tests.data.test_collect import assert_store_equals, market, overrides, truth

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
SYMBOLS = market().symbols[:10]
START, END = "2023-01-02", "2024-06-28"


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    """The session's cluster (test_cluster_job.py used it first); stopped after this module."""
    yield shared_cluster()
    shared_cluster.stop()


@pytest.fixture(scope="module")
def prefix():
    """A Redis key prefix of this module's own (the jobs' limiter and hot cache), removed afterwards."""
    import redis

    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(shared_redis_url())
    keys = list(client.scan_iter(f"{name}*"))
    if keys:
        client.delete(*keys)


def collect_job(root: Path, job_root: Path, prefix: str, rate: float) -> list[str]:
    """The main command collecting SYMBOLS from the simulator with 2 actors sharing Redis's limiter."""
    base = [o for o in overrides(root) if not o.startswith(("data.sim.rate", "redis.url"))]
    return [sys.executable, "-m", "app.main", *base, f"data.symbols=[{','.join(SYMBOLS)}]", f"data.start={START}",
            f"data.end={END}", f"data.sim.rate_limit={rate}", "collect.workers=2", "collect.batch_size=1",
            "ray.address=auto", f"redis.url={shared_redis_url()}", f"redis.key_prefix={prefix}",
            f"storage.job_root={job_root}"]


def wait_for(condition, timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the job ended before {what}: {proc.stdout.read()[-4000:]}")
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def stored(root: Path) -> list[str]:
    return BarStore(root).symbols("D")


def collection_actors(cluster: LocalCluster) -> list[psutil.Process]:
    found = []
    for p in cluster._processes():
        try:
            if "CollectorActor" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def run_folder(log: str) -> Path:
    return Path([ln.split("run folder: ", 1)[1].strip() for ln in log.splitlines() if "run folder: " in ln][-1])


def manifest_of(log: str) -> dict:
    return json.loads((run_folder(log) / "data_manifest.json").read_text())


@pytest.fixture(scope="module")
def killed_actor_job(cluster: LocalCluster, prefix: str, tmp_path_factory):
    """A collection job with KIS secrets in its runtime_env, one of whose actors is killed mid-run."""
    tmp = tmp_path_factory.mktemp("actor-kill")
    root = tmp / "store"
    secret = {"KIS_APP_KEY": f"PS{secrets.token_hex(16)}", "KIS_APP_SECRET": secrets.token_hex(32)}
    proc = cluster.submit_async(collect_job(root, tmp / "krx-ray", prefix, rate=6), ROOT, "actor-kill",
                                runtime_env={"env_vars": secret})
    try:
        wait_for(lambda: 1 <= len(stored(root)) and collection_actors(cluster), 240, "the first symbol", proc)
        actors = collection_actors(cluster)
        actors[0].kill()  # kill -9: Ray restarts the actor and retries its batch
        done_before_kill = len(stored(root))
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    logs = cluster.job("logs", "actor-kill").stdout
    return {"status": proc.returncode, "log": out, "logs": logs, "root": root, "secret": secret,
            "done_before_kill": done_before_kill}


def test_a_killed_collection_actor_is_replaced_and_the_store_is_exact(killed_actor_job):
    job = killed_actor_job
    assert job["status"] == 0, job["log"][-5000:]
    assert job["done_before_kill"] < len(SYMBOLS)  # the kill landed mid-run
    assert_store_equals(job["root"], truth(SYMBOLS, START, END))  # every bar once: no duplicates, no gaps
    manifest = manifest_of(job["log"])
    assert manifest["failed"] == {} and manifest["totals"]["symbols_ok"] == len(SYMBOLS)
    assert not list(job["root"].rglob(".tmp-*"))  # the killed actor's unfinished file is gone
    run_log = (run_folder(job["log"]) / "run.log").read_text()
    assert "Redis at redis://127.0.0.1:6379/0 answers from all 2 nodes" in run_log  # asked before collecting


def test_kis_secrets_in_the_runtime_env_are_named_once_and_never_logged(killed_actor_job):
    logs = killed_actor_job["logs"]
    warnings = [ln for ln in logs.splitlines() if "in this job's runtime_env" in ln]
    assert len(warnings) == 1 and "KIS_APP_KEY and KIS_APP_SECRET" in warnings[0], logs[-3000:]
    assert "export it on every node" in warnings[0]
    for value in killed_actor_job["secret"].values():
        assert value not in logs and value not in killed_actor_job["log"]


def test_ray_job_stop_then_a_resubmitted_job_resumes_to_an_exact_store(cluster: LocalCluster, prefix: str,
                                                                       tmp_path: Path):
    root = tmp_path / "store"
    proc = cluster.submit_async(collect_job(root, tmp_path / "krx-ray", prefix, rate=6), ROOT, "stop-me")
    try:
        wait_for(lambda: len(stored(root)) >= 2, 240, "two symbols", proc)
        stop = cluster.job("stop", "stop-me")
        assert stop.returncode == 0, stop.stdout + stop.stderr
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = stored(root)
    assert 2 <= len(kept) < len(SYMBOLS)
    for symbol in kept:  # whole files only: each partition was renamed into place complete
        assert pq.read_table(BarStore(root).partition("D", symbol)).num_rows > 0
    again = cluster.submit(collect_job(root, tmp_path / "krx-ray", prefix, rate=0), ROOT, timeout_s=400)
    assert again.status == 0, again.log[-5000:]
    assert "the last collection into" in again.log and "was interrupted" in again.log
    assert_store_equals(root, truth(SYMBOLS, START, END))
    assert not list(root.rglob(".tmp-*")) and not (root / ".collecting").exists()
    manifest = manifest_of(again.log)
    assert all(manifest["symbols"][s]["rows_added"] == 0 for s in kept)  # resumed: what was stored stays
    assert set(BarStore(root).manifest("D")) == set(SYMBOLS)


def test_redis_is_checked_from_every_node_and_an_unreachable_one_is_named(cluster: LocalCluster):
    script = (
        "import json, ray\n"
        "from app.collect.redis_nodes import check_every_node, probe_nodes\n"
        f"ray.init(address={cluster.gcs!r}, log_to_driver=False)\n"
        f"print(json.dumps([r.node_id for r in probe_nodes({shared_redis_url()!r}) if not r.error]))\n"
        "try:\n"
        "    check_every_node('redis://127.0.0.1:1/0')\n"
        "except Exception as exc:\n"
        "    print('ERROR', exc)\n"
        "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    answered, alive = json.loads(lines[0]), json.loads(lines[-1])
    assert len(alive) == 2 and sorted(answered) == sorted(alive)  # one ping per node, each from that node
    (error,) = [ln for ln in lines if ln.startswith("ERROR")]
    assert "does not answer from node " in error and "(fix: give redis.url" in error
    assert any(f"(id {n[:12]})" in error for n in alive)


def test_losing_the_worker_node_mid_training_resumes_from_the_last_checkpoint(cluster: LocalCluster,
                                                                              tmp_path: Path):
    """Last in the module: it takes the second node away."""
    run_dir = tmp_path / "run"
    epochs = 6
    proc = cluster.submit_async([sys.executable, "-m", "tests.cluster_fit_probe", str(run_dir), str(epochs)], ROOT,
                                "lose-a-node")
    try:
        log = run_dir / "run.log"
        # the controller logs an epoch once it has its checkpoint: a loss after that must not retrain it
        wait_for(lambda: log.exists() and f"epoch 1/{epochs}" in log.read_text(), 400, "epoch 1", proc)
        killed_at = cluster.kill_worker_node()
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-5000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (restore,) = metrics["restores"]
    assert restore["from_epoch"] >= 1 and restore["workers"] == 1  # on what was left: one node, one CPU
    assert restore["at"] > killed_at
    assert [r["epoch"] for r in metrics["history"]] == list(range(1, epochs + 1))  # each epoch once
    assert "training restored from the epoch-" in log.read_text()


def test_after_the_loss_too_few_workers_fit_and_the_run_fails_in_one_line(cluster: LocalCluster, tmp_path: Path):
    """The worker node is gone (the test above): an elastic group of 2..3 cannot start on the 1 CPU left."""
    started = time.time()
    job = cluster.submit([sys.executable, "-m", "tests.cluster_fit_probe", str(tmp_path / "run"), "2", "3", "2"],
                         ROOT, timeout_s=300, runtime_env={"env_vars": {"KRX_TRAIN_SHORTFALL_WAIT_S": "5"}})
    assert job.status != 0, job.log[-3000:]
    (line,) = {ln for ln in job.log.splitlines() if ln.startswith("error: only ")}  # ray job submit may echo it
    assert "only 1 of the 2 training workers train.min_workers asks for fit" in line, job.log[-3000:]
    assert "1 alive node(s) (1 CPUs; 1 CPU per worker)" in line and "(fix: lower train.min_workers" in line
    assert time.time() - started < 240  # it did not wait on Ray's own timeouts, let alone forever


SWEEP_EPOCHS = 20


def sweep_job(job_root: Path, prefix: str) -> list[str]:
    """A small ``tune_lstm`` sweep: 2 trials of 1 CPU at once (one per node), run to the end (FIFO)."""
    return [sys.executable, "-m", "app.main", "+experiment=tune_lstm", "ray.address=auto",
            "stage=[collect,features,tune]", "data.limit=6", "data.start=2023-01-02", "data.sim.rate_limit=0",
            "tune.num_samples=2", "tune.scheduler=fifo", "tune.plots=false", f"train.epochs={SWEEP_EPOCHS}",
            "train.early_stopping_patience=0", f"redis.url={shared_redis_url()}", f"redis.key_prefix={prefix}",
            f"storage.job_root={job_root}"]


def trial_rows(job_root: Path) -> dict[str, list[dict]]:
    """Trial folder name → the rows its result.json holds so far."""
    out = {}
    for path in job_root.glob("experiments/tune_lstm/*/tune/sweep/trial_*/result.json"):
        try:
            out[path.parent.name] = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        except (OSError, ValueError):  # being appended right now
            continue
    return out


def running_on(cluster: LocalCluster, rows: dict[str, list[dict]]) -> str | None:
    """The trial training on the worker node, once it has an epoch's checkpoint and epochs to go."""
    pids = {p.pid for p in cluster.worker_raylet().children(recursive=True)}
    for name, trial in rows.items():
        if trial and trial[-1].get("pid") in pids and 1 <= trial[-1]["epoch"] < SWEEP_EPOCHS - 1:
            return name
    return None


def test_losing_the_worker_node_mid_sweep_restores_its_trial_from_its_checkpoint(cluster: LocalCluster,
                                                                                 prefix: str, tmp_path: Path):
    try:
        cluster.worker_raylet()
    except RuntimeError:
        cluster.restart_worker_node()  # the training tests above took it away
    job_root = tmp_path / "krx-ray"
    proc = cluster.submit_async(sweep_job(job_root, prefix), ROOT, "lose-a-node-mid-sweep")
    try:
        wait_for(lambda: running_on(cluster, trial_rows(job_root)), 600, "a trial on the worker node", proc)
        rows = trial_rows(job_root)
        lost = running_on(cluster, rows)
        epoch_at_kill = rows[lost][-1]["epoch"]
        cluster.kill_worker_node()
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-5000:]
    run = run_folder(out)
    frame = pq.read_table(run / "tune_results.parquet").to_pandas().set_index("trial_id")
    trial_id = lost.removeprefix("trial_")
    assert len(frame) == 2 and (frame["epochs_run"] == SWEEP_EPOCHS).all()  # the sweep finished both
    assert frame.loc[trial_id, "restores"] == 1
    restored_from = int(frame.loc[trial_id, "restored_from"])
    # from its checkpoint, not from scratch: one its first attempt reported (epochs in flight when the
    # node died may have reported after the kill was read, so the bound is what that attempt reached)
    reached = max(r["epoch"] for r in trial_rows(job_root)[lost] if r["restored_from_epoch"] == 0)
    assert epoch_at_kill <= reached and 1 <= restored_from <= reached
    assert frame.drop(trial_id)["restores"].tolist() == [0]
    summary = json.loads((run / "tune_summary.json").read_text())
    assert summary["restored_trials"] == {trial_id: [restored_from]}
    after = [r for r in trial_rows(job_root)[lost] if r["restored_from_epoch"] == restored_from]
    assert [r["epoch"] for r in after] == list(range(restored_from + 1, SWEEP_EPOCHS + 1))
    assert f"trial {trial_id} was restored from its checkpoint of epoch {restored_from}" in (run / "run.log").read_text()
