"""An installed pipeline (a cluster node with the package and no working dir) carries conf/ with it."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_the_installed_package_composes_the_config_from_its_own_conf(tmp_path: Path):
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "conf").rglob("*.yaml"))
    assert [c for c in conf if f"app/{c}" not in names] == []
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run([sys.executable, "-c", "import app.main as m; print(m.CONF_DIR)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == str(site / "app" / "conf"), probe.stderr[-2000:]
    job = subprocess.run([sys.executable, "-m", "app.main", "+experiment=tune_lstm", "--cfg", "job"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert job.returncode == 0, job.stderr[-2000:]
    assert "experiment_name: tune_lstm" in job.stdout and "search_space:" in job.stdout
