"""build_report on fake run folders: files, schema, secrets, rebuild from files, the report stage."""
from __future__ import annotations

import copy
import json

import pytest

from app.errors import DataError
from app.evaluate.results import SUMMARY_FILE as EVALUATION_FILE
from app.report import build_report, record_stage, validate_report
from app.report.stage import run as report_stage
from tests.conftest import compose_config
from tests.report.conftest import SECRET

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_of_a_run_folder(make_run):
    run = make_run()
    report = build_report(run, stage_timings={"features": {"wall_s": 2.0, "rows": 320}, "predict": {"wall_s": 0.5, "samples": 200}})
    text = (run / "performance_report.json").read_text()
    validate_report(json.loads(text))
    assert SECRET not in text and SECRET not in (run / "summary.md").read_text()
    assert "kis.app_secret" in report["config"]["redacted_keys"]
    assert report["config"]["resolved"]["redis"]["url"] == "redis://:***@127.0.0.1:6379/0"
    assert report["config"]["resolved"]["evaluate"]["top_k"] == 3
    assert set(report["plots"]) == {"training", "ic", "backtest", "models", "scatter", "throughput"}
    for name in report["plots"].values():
        assert (run / name).read_bytes()[:8] == PNG
    stages = {s["stage"]: s for s in report["stages"]}
    assert stages["collect"]["requests_per_s"] == 8.0 and stages["collect"]["rate_limit"] == 20
    assert stages["features"]["per_s"] == pytest.approx(160.0)
    assert stages["train"]["per_s"] == pytest.approx(4000.0)  # 2000 samples per 0.5 s epoch
    assert report["resources"]["peak_rss_mb"] > 0 and report["resources"]["gpu"] is None
    models = report["evaluation"]["models"]
    assert list(models) == ["model", "zero", "ridge", "oracle"]
    assert models["model"]["backtest"]["top_k"]["n_rebalances"] > 0
    assert report["data"]["n_symbols"] == 8 and report["training"]["best_epoch"] == 4
    summary = (run / "summary.md").read_text()
    assert "| **model** |" in summary and "| oracle |" in summary and "![Portfolios](backtest.png)" in summary
    assert (run / EVALUATION_FILE).exists()  # the evaluation was computed from the store and saved


def test_rebuild_uses_saved_files_and_keeps_the_digest(built_report):
    run, first = built_report
    (run / "predictions.parquet").unlink()  # the saved evaluation is enough to rebuild
    second = report_stage(compose_config("stage=report", f"run_dir={run}"), run.parent / "unused")
    assert second["config"]["digest"] == first["config"]["digest"]
    assert second["evaluation"]["models"]["model"]["forecast"] == first["evaluation"]["models"]["model"]["forecast"]
    assert "scatter" in second["plots"]  # drawn as an empty placeholder: no rows left to scatter


def test_report_without_predictions_is_valid_and_says_why(make_run):
    run = make_run(predictions=False)
    record_stage(run, "collect", 3.0, bars=300, requests=12, rate_limit=20)
    record_stage(run, "train", 4.0, samples=8000)
    report = build_report(run)
    assert report["evaluation"] is None
    assert any("no predictions.parquet" in n for n in report["notes"])
    stages = {s["stage"]: s for s in report["stages"]}
    assert stages["collect"]["wall_s"] == 3.0 and stages["collect"]["requests_per_s"] == pytest.approx(4.0)
    assert stages["train"]["per_s"] == pytest.approx(2000.0)


@pytest.mark.parametrize("breakage, where", [
    (lambda r: r.pop("evaluation"), "top level"),
    (lambda r: r["evaluation"]["models"]["model"]["forecast"].__setitem__("ic", "high"), "evaluation/models/model/forecast/ic"),
    (lambda r: r["evaluation"]["models"]["model"]["backtest"]["top_k"].__setitem__("max_drawdown", 0.2), "max_drawdown"),
    (lambda r: r["config"].__setitem__("digest", "not-a-hash"), "config/digest"),
    (lambda r: r["config"]["resolved"]["kis"].__setitem__("access_token", "x"), "kis.access_token"),
])
def test_a_broken_report_fails_validation(built_report, breakage, where):
    validate_report(built_report[1])
    broken = copy.deepcopy(built_report[1])
    breakage(broken)
    with pytest.raises(DataError, match=where):
        validate_report(broken)


def test_a_report_names_the_market_its_data_come_from(make_run, monkeypatch):
    """The summary, the JSON and every plot's title say the bars are simulated, and how."""
    from app.collect.sources import describe_sim
    from app.report import style
    from app.sim.config import MarketConfig, SimConfig

    run = make_run()
    manifest = json.loads((run / "data_manifest.json").read_text())
    sim = SimConfig(market=MarketConfig(seed=7, n_symbols=30, signal_strength=0.3, nonlinear_strength=0.5))
    manifest["data_source"] = describe_sim(sim)
    (run / "data_manifest.json").write_text(json.dumps(manifest))
    titles: list[str] = []
    real_save = style.save
    monkeypatch.setattr(style, "save", lambda fig, path, dpi: (real_save(fig, path, dpi), titles.append(fig.get_suptitle()))[0])
    report = build_report(run)
    label = "simulated KIS market (seed 7, 30 symbols, planted signal 0.3, non-linear 0.5); not real data"
    assert report["data_source"]["kind"] == "sim" and report["data_source"]["label"] == label
    assert json.loads((run / "performance_report.json").read_text())["data_source"]["signal_strength"] == 0.3
    assert (run / "summary.md").read_text().splitlines()[2] == f"**Data: {label}.**"
    assert len(titles) == len(report["plots"]) and set(titles) == {f"data: {label}"}


def test_an_older_manifest_still_names_its_source(make_run):
    report = build_report(make_run())  # the fixture's manifest has only "source": "sim"
    assert report["data_source"] == {"kind": "sim", "label": "simulated KIS market; not real data"}
