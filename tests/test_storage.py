"""Every path is resolved once, at config time, against the storage root (never Ray's per-job copy)."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from app import config as schema
from app import storage
from tests.conftest import ROOT


def _compose(*overrides: str):
    schema.register()
    overrides = ("+experiment=lstm", *overrides)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        schema.validate(compose(config_name="config", overrides=list(overrides)))
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def test_on_a_laptop_outputs_keep_the_projects_layout(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(storage.RAY_JOB_ENV, raising=False)
    cfg = _compose("data.path=bars.csv")
    assert Path(cfg.hydra.run.dir).parent == tmp_path / "experiments" / "lstm"
    assert storage.resolve_paths(cfg) == tmp_path
    assert cfg.store.root == str(tmp_path / "data")
    assert cfg.data.path == str(tmp_path / "bars.csv")  # an input: as the user typed it, made absolute


def test_under_a_ray_job_outputs_go_to_the_job_root_not_the_working_dir_copy(tmp_path: Path, monkeypatch):
    copy = tmp_path / "_ray_pkg_abc"
    copy.mkdir()
    monkeypatch.chdir(copy)
    monkeypatch.setenv(storage.RAY_JOB_ENV, "{}")
    cfg = _compose(f"storage.job_root={tmp_path / 'krx-ray'}", "features.path=feats")
    assert Path(cfg.hydra.run.dir).parent == tmp_path / "krx-ray" / "experiments" / "lstm"
    storage.resolve_paths(cfg)
    assert cfg.store.root == str(tmp_path / "krx-ray" / "data")
    assert cfg.features.path == str(tmp_path / "krx-ray" / "feats")
    assert str(copy) not in cfg.store.root


def test_a_chosen_root_holds_run_folders_and_the_store(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(storage.RAY_JOB_ENV, "{}")  # an explicit root wins over the job default
    cfg = _compose(f"storage.root={tmp_path / 'nfs'}", "store.root=/abs/store")
    assert Path(cfg.hydra.run.dir).parent == tmp_path / "nfs" / "experiments" / "lstm"
    storage.resolve_paths(cfg)
    assert cfg.store.root == "/abs/store"  # an absolute path stays as given


@pytest.mark.parametrize("root", ["ftp://host/x", "s3://", "http://example.com/runs", "s3://AKIA:s3cr3t@bucket/x"])
def test_a_storage_uri_pyarrow_cannot_write_fails_at_config_time(root: str):
    with pytest.raises(schema.ConfigError, match="storage.root"):
        _compose(f"storage.root={root}")


def test_the_cli_reports_a_bad_storage_uri_in_one_line_with_exit_2():
    proc = subprocess.run([sys.executable, "-m", "app.main", "storage.root=ftp://host/runs"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "storage.root" in proc.stderr and "fix:" in proc.stderr


def test_a_uri_root_gets_a_copy_of_the_finished_run_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(storage.RAY_JOB_ENV, raising=False)
    cfg = _compose(f"storage.root=file://{tmp_path / 'bucket'}")
    run_dir = Path(cfg.hydra.run.dir)
    (run_dir / "checkpoints" / "best").mkdir(parents=True)
    (run_dir / "checkpoints" / "best" / "model.pt").write_bytes(b"weights")
    (run_dir / "summary.md").write_text("# run")
    target = storage.publish(run_dir, cfg)
    rel = run_dir.relative_to(tmp_path)
    assert target == f"file://{tmp_path / 'bucket'}/{rel.as_posix()}"
    copied = tmp_path / "bucket" / rel
    assert (copied / "checkpoints" / "best" / "model.pt").read_bytes() == b"weights"
    assert (copied / "summary.md").read_text() == "# run"


def test_several_nodes_without_shared_storage_warn_in_one_line(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    local = _compose().storage
    with caplog.at_level(logging.WARNING, logger="app.storage"):
        storage.warn_if_unshared(1, local)
        assert caplog.records == []
        storage.warn_if_unshared(2, local)
    assert len(caplog.records) == 1 and "checkpoints need shared storage" in caplog.records[0].getMessage()
    caplog.clear()
    storage.warn_if_unshared(2, _compose("storage.root=s3://bucket/krx").storage)  # every node sees a URI
    storage.warn_if_unshared(2, _compose("storage.shared=true").storage)
    assert caplog.records == []


def test_a_job_in_rays_working_dir_copy_reruns_from_a_copy_of_its_own(tmp_path: Path, monkeypatch):
    ray_copy = tmp_path / "runtime_resources" / storage.RAY_COPIES / "_ray_pkg_abc"
    (ray_copy / "app").mkdir(parents=True)
    (ray_copy / "app" / "main.py").write_text("# the job's code\n")
    monkeypatch.chdir(ray_copy)
    monkeypatch.setenv(storage.RAY_JOB_ENV, "{}")
    monkeypatch.delenv("KRX_OWN_COPY", raising=False)
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda name: str(tmp_path / "cache" / name))
    monkeypatch.setattr(sys, "argv", ["/x/app/main.py", "+experiment=lstm", "data.path=bars.csv"])
    execs = []
    monkeypatch.setattr(storage.os, "execve", lambda exe, argv, env: execs.append((argv, env, Path.cwd())))
    storage.run_from_own_copy()
    own = tmp_path / "cache" / "krx-ray" / "code" / "_ray_pkg_abc"
    assert (own / "app" / "main.py").read_text() == "# the job's code\n"
    (argv, env, cwd), = execs
    assert argv[1:] == ["-m", "app.main", "+experiment=lstm", "data.path=bars.csv"] and cwd == own
    assert env["PYTHONPATH"].split(":")[0] == str(own) and env["KRX_OWN_COPY"] == "1"
    monkeypatch.setenv("KRX_OWN_COPY", "1")  # the re-run itself goes on
    storage.run_from_own_copy()
    assert len(execs) == 1


def test_a_job_whose_copy_another_node_just_deleted_reruns_from_it_once_unpacked_again(tmp_path: Path, monkeypatch):
    """Two nodes sharing a temp dir: the second agent deletes Ray's copy the driver stands in and
    unpacks the same code there again; the driver waits for that unpack (Ray's lock) and goes on."""
    ray_copy = tmp_path / "runtime_resources" / storage.RAY_COPIES / "_ray_pkg_abc"
    ray_copy.mkdir(parents=True)
    monkeypatch.chdir(ray_copy)
    ray_copy.rmdir()  # deleted under the driver: os.getcwd() now fails
    (ray_copy / "app").mkdir(parents=True)  # and unpacked again at the same path
    (ray_copy / "app" / "main.py").write_text("# the job's code\n")
    monkeypatch.setattr(storage, "CODE_ROOT", ray_copy)
    monkeypatch.setenv(storage.RAY_JOB_ENV, "{}")
    monkeypatch.delenv("KRX_OWN_COPY", raising=False)
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda name: str(tmp_path / "cache" / name))
    monkeypatch.setattr(sys, "argv", ["/x/app/main.py", "+experiment=lstm"])
    execs = []
    monkeypatch.setattr(storage.os, "execve", lambda exe, argv, env: execs.append((argv, Path.cwd())))
    storage.run_from_own_copy()
    own = tmp_path / "cache" / "krx-ray" / "code" / "_ray_pkg_abc"
    assert (own / "app" / "main.py").read_text() == "# the job's code\n"
    assert execs == [([sys.executable, "-m", "app.main", "+experiment=lstm"], own)]

