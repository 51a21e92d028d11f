"""A new stage or bar source is one registry entry plus its module: nothing else to edit."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app import stages
from app.console import CONSOLE
from app.collect import collect
from app.collect.bar_source import BAR_SOURCES
from app.errors import ConfigError
from app.report.throughput import stage_table
from app.stage_registry import STAGES, BaseStage, StageEntry
from tests.conftest import compose_config


class CountingStage(BaseStage):
    """A stage that only reports a figure, and remembers that it ran after its preflight."""

    calls: list[str] = []

    def preflight(self, cfg, run_dir: Path) -> None:
        self.calls.append("preflight")

    def run(self, cfg, run_dir: Path) -> int:
        self.calls.append("run")
        return 7

    def counts(self, result: int) -> dict:
        return {"rows": result}


COUNTING = CountingStage()


class MemorySource:
    """Bars from nowhere: a manifest of one symbol, as a real source would return."""

    def check(self, cfg) -> None:
        if cfg.data.source == "memory" and cfg.data.freq != "D":
            raise ConfigError("data=memory has daily bars only", "set data.freq=D")

    def collect(self, cfg, run_dir: Path, store_root: Path) -> dict:
        return {"source": "memory", "symbols": {"005930": {"status": "ok"}}, "failed": {},
                "totals": {"symbols": 1, "symbols_ok": 1, "bars_fetched": 3, "rows_added": 3, "seconds": 0.1,
                           "bars_per_s": 30.0}}


MEMORY = MemorySource()


def test_a_registered_stage_runs_and_is_recorded_in_order(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(STAGES, "count", StageEntry("count", f"{__name__}:COUNTING", unit="rows"))
    monkeypatch.setattr(CountingStage, "calls", [])
    cfg = compose_config("stage=[count,doctor]", f"store.root={tmp_path / 'store'}", "redis.url=''")
    assert stages.stages_of(cfg) == ["doctor", "count"]
    monkeypatch.setitem(STAGES, "doctor", StageEntry("doctor", None, recorded=False))  # no Ray here
    with caplog.at_level(logging.INFO, logger=CONSOLE):
        stages.run_stages(cfg, tmp_path / "run")
    assert CountingStage.calls == ["preflight", "run"]
    assert any(r.getMessage().startswith("count     7 rows in ") for r in caplog.records)  # its entry's unit
    timing = json.loads((tmp_path / "run" / "stage_timings.json").read_text())["count"]
    assert timing["rows"] == 7
    table = stage_table({"count": {"wall_s": 1.0, "rows": 7}, "collect": 2.0}, None, None)
    assert [e["stage"] for e in table] == ["collect", "count"]  # registry order: new stages come last


def test_a_registered_bar_source_is_accepted_checked_and_collected(tmp_path, monkeypatch):
    monkeypatch.setitem(BAR_SOURCES, "memory", f"{__name__}:MEMORY")
    with pytest.raises(ConfigError, match="daily bars only"):
        compose_config("data.source=memory", "data.freq=W")
    cfg = compose_config("data.source=memory", f"store.root={tmp_path / 'store'}")
    manifest = collect.run(cfg, tmp_path / "run")
    assert manifest["totals"]["bars_fetched"] == 3
    assert json.loads((tmp_path / "run" / "data_manifest.json").read_text())["source"] == "memory"


def test_an_unknown_source_names_the_registered_ones():
    with pytest.raises(ConfigError, match="use one of auto, sim, kis, file"):
        compose_config("data.source=ftp")
