"""The report shows the run's environment and each stage's process-tree and GPU memory."""
from __future__ import annotations

import json

from app.report import build_report
from app.report.plots_run import _rate_label

ENV = {"python": {"version": "3.11.7"}, "torch": {"version": "2.13.0+cpu", "build": "cpu"},
       "cuda": {"available": False, "version": None, "cudnn": None}, "gpus": [],
       "ray": {"version": "2.60.0", "started": True, "cpus": 2.0, "gpus": 0.0, "nodes": 1},
       "redis": {"configured": True, "address": "127.0.0.1:6379/0", "reachable": True, "version": "7.0.15"},
       "kis": {"source": "sim", "set": [], "unset": ["KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT"]},
       "disk": {"path": "/data", "free_mb": 5000, "total_mb": 9000},
       "market": {"now": "2026-12-01T18:00:00+09:00", "state": "closed", "next_open": None}}


def test_report_shows_environment_and_memory_per_stage(make_run):
    run = make_run()
    (run / "environment.json").write_text(json.dumps(ENV))
    (run / "stage_timings.json").write_text(json.dumps({
        "collect": {"wall_s": 2.0, "bars": 320, "peak_rss_mb": 900.0, "driver_peak_rss_mb": 400.0},
        "train": {"wall_s": 30.0, "samples": 12000, "peak_rss_mb": 3100.0, "driver_peak_rss_mb": 600.0,
                  "gpu_peak_mb": 512.5}}))
    report = build_report(run)
    assert report["environment"]["torch"]["build"] == "cpu"
    stages = {s["stage"]: s for s in report["stages"]}
    assert stages["train"]["peak_rss_mb"] == 3100.0 and stages["collect"]["driver_peak_rss_mb"] == 400.0
    assert report["resources"]["peak_rss_mb"] == 3100.0 and "process tree" in report["resources"]["scope"]
    assert report["resources"]["gpu"]["peak_allocated_mb"] == 512.5  # the workers' figure, not the driver's
    summary = (run / "summary.md").read_text()
    assert "## Environment" in summary and "2.13.0+cpu (cpu build)" in summary and "| 3,100 | 512 |" in summary
    assert _rate_label(stages["train"]).endswith("3,100 MB RSS · 512 MB GPU")


def test_report_without_environment_or_memory_still_validates(make_run):
    report = build_report(make_run())
    assert report["environment"] is None and report["resources"]["peak_rss_mb"] > 0
