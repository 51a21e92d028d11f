"""The report CLI: rebuild one run's report, compare several runs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.report.conftest import create_run


def _main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.main", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_stage_report_rebuilds_a_run_and_stage_compare_tables_two(tmp_path: Path):
    a = create_run(tmp_path, "2026-01-01_00-00-00", seed=0)
    b = create_run(tmp_path, "2026-01-02_00-00-00", seed=1)
    out = _main("stage=report", f"run_dir={a}", f"hydra.run.dir={tmp_path / 'rep'}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (a / "performance_report.json").stat().st_size > 0 and (a / "summary.md").exists()
    cmp = _main("stage=compare", f"runs=[{a},{b}]", f"hydra.run.dir={tmp_path / 'cmp'}")
    assert cmp.returncode == 0, cmp.stderr[-2000:]
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert a.name in table and b.name in table
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 1000


def test_stage_compare_without_runs_is_a_clear_error(tmp_path: Path):
    out = _main("stage=compare", f"hydra.run.dir={tmp_path / 'x'}")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: stage=compare needs run folders")
