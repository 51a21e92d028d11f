"""``ray job submit --working-dir .`` of the main command on a real 2-node cluster on this machine.

Both nodes share one temp dir, the setting in which Ray's second node deletes and re-unpacks the
working dir the driver runs in; the job must still finish and leave its run folder outside Ray's copy.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.cluster_testutil import LocalCluster
from tests.conftest import ROOT
from tests.test_pipeline_e2e import RUN_FILES

SMALL = ["data.limit=6", "data.start=2023-01-02", "train.epochs=2", "data.sim.rate_limit=0"]


@pytest.fixture
def cluster(shared_cluster) -> LocalCluster:
    return shared_cluster()  # test_cluster_survives.py goes on with it


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_submitted_lstm_job_succeeds_and_its_run_folder_is_complete(cluster: LocalCluster, tmp_path: Path):
    job_root = tmp_path / "krx-ray"
    job = cluster.submit([sys.executable, "-m", "app.main", "+experiment=lstm", "ray.address=auto", *SMALL,
                          f"storage.job_root={job_root}"], working_dir=ROOT, timeout_s=780)
    assert job.status == 0, job.log[-6000:]
    first, *_, last = job.run_folders
    assert first == last  # the job's log names the run folder first and again at the end
    run = Path(first)
    assert run.parent == job_root / "experiments" / "lstm"  # not inside Ray's _ray_pkg_<hash> copy
    assert [f for f in RUN_FILES if not (run / f).exists()] == []
    manifest = json.loads((run / "data_manifest.json").read_text())
    assert manifest["store_root"] == str(job_root / "data") and manifest["totals"]["symbols_ok"] == 6
    assert "checkpoints need shared storage" in job.log  # two nodes, storage local to each


def test_window_blocks_are_copied_to_the_driver_node(cluster: LocalCluster):
    """Blocks built on both nodes end up on the driver's: losing the other node cannot leave a trial
    or a training worker waiting for a block that only a task needing a CPU could rebuild."""
    job = cluster.submit([sys.executable, "-m", "tests.cluster_blocks_probe"], ROOT, timeout_s=300)
    assert job.status == 0, job.log[-3000:]
    (found,) = re.findall(r"^blocks: (\{.*\})$", job.log, re.M)
    where = json.loads(found)
    assert len(where["spread"]) == 2, where  # the materialized blocks sat on both nodes
    assert where["held"] == [where["driver"]] and where["same_rows"], where
    assert where["untouched_in_an_actor"], where  # a trial training through Ray Train does not copy it again
