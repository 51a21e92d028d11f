"""Ray's start-up is its own line of stage_timings.json, recorded before the first stage that uses Ray."""
from __future__ import annotations

import json
import time

import ray

import app.machine.environment
import app.machine.stage
import app.ray_runtime
from app import stages
from app.stage_registry import BaseStage
from tests.conftest import compose_config


def test_ray_start_up_is_recorded_apart_from_the_first_ray_stage(tmp_path, monkeypatch):
    started: list[object] = []
    seen: list[tuple[str, bool]] = []

    def fake_init(ray_cfg, storage_cfg=None):
        time.sleep(0.2)
        started.append(ray_cfg)

    class FakeStage(BaseStage):
        def __init__(self, name: str) -> None:
            self.name = name

        def run(self, cfg, run_dir):
            time.sleep(0.05)
            seen.append((self.name, bool(started)))

    monkeypatch.setattr(ray, "is_initialized", lambda: bool(started))
    monkeypatch.setattr(app.ray_runtime, "init_ray", fake_init)
    monkeypatch.setattr(app.machine.stage, "at_start", lambda cfg, run_dir: None)
    monkeypatch.setattr(app.machine.environment, "refresh_ray", lambda run_dir: None)
    monkeypatch.setattr(stages, "stage", FakeStage)
    cfg = compose_config("stage=[evaluate,features,train]")
    monkeypatch.setattr(stages, "stages_of", lambda c: ["evaluate", "features", "train"])  # a stage before Ray's

    stages.run_stages(cfg, tmp_path)

    timings = json.loads((tmp_path / "stage_timings.json").read_text())
    assert list(timings) == ["evaluate", stages.RAY_START, "features", "train"]  # once, before the first Ray stage
    assert 0.2 <= timings[stages.RAY_START]["wall_s"] < 1.0
    assert timings["features"]["wall_s"] < 0.2  # the start-up is not inside the stage
    assert seen == [("evaluate", False), ("features", True), ("train", True)]
    assert len(started) == 1


def test_a_stage_that_needs_no_ray_this_run_does_not_start_it(tmp_path, monkeypatch):
    started: list[object] = []

    class FakeStage(BaseStage):
        def __init__(self, name: str) -> None:
            self.name = name

        def needs_ray(self, cfg):
            return self.name != "collect"

        def run(self, cfg, run_dir):
            assert bool(started) == (self.name != "collect")

    monkeypatch.setattr(ray, "is_initialized", lambda: bool(started))
    monkeypatch.setattr(app.ray_runtime, "init_ray", lambda ray_cfg, storage_cfg=None: started.append(ray_cfg))
    monkeypatch.setattr(app.machine.stage, "at_start", lambda cfg, run_dir: None)
    monkeypatch.setattr(app.machine.environment, "refresh_ray", lambda run_dir: None)
    monkeypatch.setattr(stages, "stage", FakeStage)
    monkeypatch.setattr(stages, "stages_of", lambda c: ["collect", "features"])

    stages.run_stages(compose_config(), tmp_path)

    timings = json.loads((tmp_path / "stage_timings.json").read_text())
    assert list(timings) == ["collect", stages.RAY_START, "features"] and len(started) == 1


def test_only_a_collection_with_actors_needs_ray():
    from app.collect.collect_stage import STAGE

    assert STAGE.needs_ray(compose_config("collect.workers=2"))  # the universe: maybe many symbols
    assert STAGE.needs_ray(compose_config("collect.workers=2", "data.symbols=[005930,000660]"))
    assert not STAGE.needs_ray(compose_config("collect.workers=2", "data.symbols=[005930]"))
    assert not STAGE.needs_ray(compose_config("collect.workers=0", "data.symbols=[005930,000660]"))


def test_a_running_ray_is_not_started_again(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    assert stages.start_ray(compose_config(), tmp_path) is None
    assert not (tmp_path / "stage_timings.json").exists()
