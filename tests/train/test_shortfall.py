"""Fewer workers than ``train.min_workers`` fit on the cluster: the run fails in one line, it never hangs."""
from __future__ import annotations

import time

import pytest

from app.errors import AppError
from app.train.config import TrainConfig
from app.train.fit import FitData, fit
from app.train.shortfall import WAIT_ENV, ShortfallWatch, shortfall_error, wait_s, workers_that_fit
from train_testutil import N_FEATURES, to_dataset, windows

NODES = [
    {"Alive": True, "Resources": {"CPU": 3.0, "GPU": 1.0}},
    {"Alive": True, "Resources": {"CPU": 1.0}},
    {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 4.0}},  # a lost node's resources are gone
]


def test_workers_fit_per_alive_node_and_never_span_nodes():
    assert workers_that_fit(NODES, {"CPU": 1.0}) == 4
    assert workers_that_fit(NODES, {"CPU": 2.0}) == 1  # 3 CPUs hold one, 1 CPU none
    assert workers_that_fit(NODES, {"CPU": 1.0, "GPU": 0.5}) == 2
    assert workers_that_fit(NODES, {"CPU": 0.5}) == 8


def test_the_error_names_the_shortfall_and_the_fix():
    text = str(shortfall_error(1, 2, {"CPU": 2.0}, NODES, 31.4))
    assert "\n" not in text
    assert "only 1 of the 2 training workers train.min_workers asks for" in text
    assert "2 alive node(s) (4 CPUs; 2 CPU per worker), for 31 s" in text
    assert "(fix: lower train.min_workers" in text and "train.resume=true" in text


def test_the_wait_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(WAIT_ENV, "7.5")
    assert wait_s() == 7.5
    monkeypatch.setenv(WAIT_ENV, "soon")
    with pytest.raises(AppError, match=f"{WAIT_ENV}='soon' is not a number"):
        wait_s()


def _state(name: str):
    """A stand-in for Ray Train's controller state of that class name."""
    return type(name, (), {"is_terminal": lambda self: False})()


def test_the_watch_waits_then_raises_and_a_running_group_resets_it(ray_session, monkeypatch):
    watch = ShortfallWatch(3, {"CPU": 1.0}, wait=0.3)  # the session's Ray has 2 CPUs
    monkeypatch.setattr("app.train.shortfall.CHECK_EVERY_S", 0.0)
    watch.after_controller_state_update(None, _state("SchedulingState"))  # short from now on
    assert watch.short_since is not None
    watch.after_controller_state_update(None, _state("RunningState"))
    assert watch.short_since is None
    watch.after_controller_state_update(None, _state("SchedulingState"))
    time.sleep(0.35)
    with pytest.raises(AppError, match="only 2 of the 3 training workers"):
        watch.after_controller_state_update(None, _state("SchedulingState"))
    ShortfallWatch(2, {"CPU": 1.0}, wait=0.0).after_controller_state_update(None, _state("SchedulingState"))


@pytest.mark.timeout(240)
def test_fit_with_more_min_workers_than_fit_fails_in_one_line(ray_session, tmp_path, monkeypatch):
    monkeypatch.setenv(WAIT_ENV, "3")
    data = FitData(to_dataset(windows(30, 8, seed=1)), to_dataset(windows(5, 8, seed=2, start="2024-08-01")),
                   N_FEATURES, {"feature_names": list("abcd")})
    cfg = TrainConfig(num_workers=4, min_workers=3, epochs=1, batch_size=50, baselines=False, seed=7)
    began = time.time()
    with pytest.raises(AppError) as caught:  # an elastic group of 3..4 on 2 CPUs: Ray would wait forever
        fit({"_target_": "app.models.lstm.LSTMModel", "hidden_size": 8, "num_layers": 1}, cfg, data, tmp_path,
            write_predictions=False)
    text = str(caught.value)
    assert "only 2 of the 3 training workers train.min_workers asks for fit" in text and "\n" not in text
    assert "(fix: lower train.min_workers" in text
    assert time.time() - began < 180


def test_without_rays_controller_hooks_training_goes_on_without_the_watchers(monkeypatch, caplog):
    import logging

    from app.train import controller_hooks, fit

    assert len(fit._watchers(TrainConfig(num_workers=2), 1, elastic=True)) == 2  # this Ray has them
    monkeypatch.setattr(controller_hooks, "ControllerCallback", object)
    with caplog.at_level(logging.WARNING, logger="app.train.controller_hooks"):
        assert fit._watchers(TrainConfig(num_workers=2), 1, elastic=True) == []
    assert "no Train controller hooks" in caplog.text
