"""compare_runs on two tiny run folders."""
from __future__ import annotations

import pandas as pd
import pytest

from app.errors import DataError
from app.report import build_report, compare_runs


def test_compare_two_runs(make_run, tmp_path):
    runs = [make_run("2026-01-01_00-00-00", seed=0), make_run("2026-01-02_00-00-00", seed=1)]
    reports = [build_report(r) for r in runs]
    paths = compare_runs(runs, tmp_path / "cmp")
    table = pd.read_csv(paths["csv"])
    assert table["run"].tolist() == ["lstm/2026-01-01_00-00-00", "lstm/2026-01-02_00-00-00"]
    for row, report in zip(table.to_dict("records"), reports):
        assert row["ic"] == pytest.approx(report["evaluation"]["models"]["model"]["forecast"]["ic"])
        assert row["topk_sharpe"] == pytest.approx(report["evaluation"]["models"]["model"]["backtest"]["top_k"]["sharpe"])
    markdown = paths["markdown"].read_text().splitlines()
    assert sum(line.startswith("| lstm/") for line in markdown) == 2
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["plot"].stat().st_size > 10_000


def test_compare_needs_built_reports(make_run, tmp_path):
    with pytest.raises(DataError, match="stage=report"):
        compare_runs([make_run()], tmp_path / "cmp")
