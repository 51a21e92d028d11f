"""Every run begins with the environment check and records each stage's process-tree memory."""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from app import stages
from app.collect.collect_stage import CollectStage
from app.stage_registry import STAGES
from tests.conftest import compose_config
from tests.machine.memory_testutil import hold_80mb_child

SECTIONS = {"python", "torch", "cuda", "gpus", "ray", "redis", "kis", "disk", "market"}


def hungry_stage(cfg, run_dir: Path) -> dict:
    """A stand-in collection whose child process holds 80 MB for a while, as a Ray worker would."""
    hold_80mb_child()
    return {"totals": {"bars_fetched": 10, "requests": 1}}


class HungryCollect(CollectStage):
    def run(self, cfg, run_dir: Path) -> dict:
        return hungry_stage(cfg, run_dir)


HUNGRY = HungryCollect()


def test_a_run_checks_the_environment_first_and_records_memory_per_stage(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(STAGES, "collect", replace(STAGES["collect"], target=f"{__name__}:HUNGRY"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    cfg = compose_config("stage=collect", f"store.root={tmp_path / 'store'}", "redis.url=''")
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO):
        stages.run_stages(cfg, run)
    env = json.loads((run / "environment.json").read_text())
    assert SECTIONS <= set(env) and env["redis"] == {"configured": False, "reachable": None}
    assert env["disk"]["path"] == str(tmp_path / "store") and env["disk"]["free_mb"] > 0
    block = [r.getMessage() for r in caplog.records if r.getMessage().startswith("environment:")]
    assert 1 <= len(block) <= 6
    messages = [r.getMessage() for r in caplog.records]
    stage_done = next(i for i, m in enumerate(messages) if m.startswith("collect ") and " in " in m)  # its line
    assert max(i for i, m in enumerate(messages) if m in block) < stage_done
    timing = json.loads((run / "stage_timings.json").read_text())["collect"]
    assert timing["peak_rss_mb"] >= timing["driver_peak_rss_mb"] > 0
    assert timing["peak_rss_mb"] - timing["driver_peak_rss_mb"] > 60  # the child's 80 MB counted


def test_doctor_is_not_part_of_all():
    assert "doctor" not in stages.stages_of(compose_config())
    assert stages.stages_of(compose_config("stage=[train,doctor]")) == ["doctor", "train"]  # it runs first
