"""The console: which lines a person sees, which stay in run.log, and the words of each line."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from app import console
from app.console_text import epoch_line, result_lines, stage_line


@pytest.fixture
def streams(tmp_path: Path, monkeypatch):
    """A console handler and a run.log handler on the root logger, as Hydra sets them up."""
    root = logging.getLogger()
    screen = io.StringIO()
    shown = logging.StreamHandler(screen)
    filed = logging.FileHandler(tmp_path / "run.log")
    filed.setFormatter(logging.Formatter("[%(name)s][%(levelname)s] - %(message)s"))
    monkeypatch.setattr(root, "handlers", [shown, filed])
    monkeypatch.setattr(root, "level", logging.INFO)
    monkeypatch.setitem(console._state, "debug", True)
    console.install(debug=False)
    yield screen, lambda: (tmp_path / "run.log").read_text()
    filed.close()


def test_the_console_shows_its_own_lines_and_warnings_and_run_log_keeps_everything(streams):
    screen, run_log = streams
    console.say("run folder: %s", "/abs/run")
    logging.getLogger("app.features.windows").info("windows: 123 features, seq_len 20")
    logging.getLogger("app.kis.ratelimit").warning("Redis unreachable: pacing is per process")
    logging.getLogger("app").error("no symbol could be collected", extra=console.RUN_LOG_ONLY)  # shown by fail()
    assert screen.getvalue().splitlines() == ["run folder: /abs/run", "warning: Redis unreachable: pacing is per process"]
    assert "windows: 123 features" in run_log() and "run folder: /abs/run" in run_log()
    assert "no symbol could be collected" in run_log()


def test_worker_output_is_routed_marked_lines_to_the_console_the_rest_to_run_log(streams):
    screen, run_log = streams
    console.route_batch({"pid": 41, "actor_name": "TrainController", "lines": [
        console.WORKER_MARK + "epoch 1/3  train loss 1.0000",
        "Checkpoint successfully created at: Checkpoint(filesystem=local, path=/x/epoch_0001)",
        "TrainingReport(checkpoint=None, metrics={'epoch': 1}, validation=False)",
        "2026-12-01 09:00:27,876\tWARNING worker.py:12 -- the cluster has no free CPUs",
        "WARNING app.kis.ratelimit: Redis lost: pacing falls back to this process",
        "/venv/lib/python3.11/site-packages/ray/data/x.py:436: RayDeprecationWarning: `exclude_resources` is deprecated",
        "[2026-12-01 09:01:51,588 E 16639 16773] core_worker.cc:2465: Actor 'PreemptionWatcher' has constructor "
        "arguments in the object store and max_restarts > 0.",
        "__ray_tqdm_magic_token__ {\"x\": 1}",
    ]})  # fmt: skip
    shown = screen.getvalue().splitlines()
    assert shown == [
        "epoch 1/3  train loss 1.0000",
        "warning: (TrainController pid=41) 2026-12-01 09:00:27,876\tWARNING worker.py:12 -- the cluster has no free CPUs",
        "warning: (TrainController pid=41) WARNING app.kis.ratelimit: Redis lost: pacing falls back to this process",
    ]
    text = run_log()
    assert "Checkpoint successfully created" in text and "TrainingReport(" in text and "RayDeprecationWarning" in text
    assert "epoch 1/3" not in text  # the controller writes its epoch lines to run.log itself
    assert "tqdm" not in text


def test_debug_leaves_the_console_alone(tmp_path, monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(logging.getLogger(), "handlers", [logging.StreamHandler(screen)])
    monkeypatch.setitem(console._state, "debug", True)
    console.install(debug=True)
    logging.getLogger("app.collect").warning("x")
    logging.getLogger("app.collect").error("y")
    assert not console.routing() and console.route_worker_output() is False
    assert screen.getvalue().splitlines() == ["x", "y"]


def test_worker_setup_hook_prints_app_records_with_their_level(capsys, monkeypatch):
    logger = logging.getLogger("app")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", True)
    console.setup_worker_logging()
    console.setup_worker_logging()  # idempotent: a worker reused for another task
    logging.getLogger("app.collect.hot_cache").warning("hot cache unavailable")
    logging.getLogger("app.train.worker").info("rank 0 continues after epoch 2")
    err = capsys.readouterr().err.splitlines()
    assert err == ["WARNING app.collect.hot_cache: hot cache unavailable", "INFO app.train.worker: rank 0 continues after epoch 2"]
    assert all(console._WARNING.search(line) for line in err[:1]) and not console._WARNING.search(err[1])


def test_stage_and_epoch_lines():
    assert stage_line("collect", 40.0, {"bars": 33000, "requests": 700, "rate_limit": 18}, "bars") == (
        "collect   33,000 bars in 40.0 s (825 bars/s; 17.5 requests/s, limit 18)")
    assert stage_line("train", 20.0, {"samples": 769000}, "samples") == "train     769,000 samples in 20.0 s (38,450 samples/s)"
    assert stage_line("evaluate", 3.21, {}) == "evaluate  done in 3.2 s"
    row = {"epoch": 3, "train_loss": 6.14912e-4, "val_loss": 6.37e-4, "val_ic": 0.24331, "epoch_seconds": 4.26,
           "is_best": True}  # fmt: skip
    assert epoch_line(row, 20) == "epoch 3/20  train loss 0.0006149  val loss 0.000637  val IC 0.2433  4.3 s  (best)"
    assert epoch_line({"epoch": 1, "train_loss": 1.0, "val_loss": float("nan")}, 2) == (
        "epoch 1/2  train loss 1  val loss nan  val IC n/a")


def test_result_lines_put_the_model_beside_its_baselines():
    def entry(ic, sharpe=None, turnover=None):
        top = {"sharpe": sharpe, "avg_turnover": turnover} if sharpe is not None else None
        return {"forecast": {"ic": ic}, "backtest": {"top_k": top} if top else None}

    report = {"evaluation": {"splits": ["test"], "settings": {"top_k": 5}, "models": {
        "model": entry(0.1234, 1.5, 0.42), "zero": entry(None), "ridge": entry(0.0811, 0.9, 0.3),
        "oracle": entry(0.2502, 3.1, 0.5)}}}  # fmt: skip
    assert result_lines(report, "/abs/run/summary.md") == [
        "test IC: model 0.1234, ridge 0.0811, zero n/a, oracle 0.2502",
        "top-5 book (after costs): Sharpe 1.50, turnover 0.42 per rebalance",
        "summary: /abs/run/summary.md",
    ]
    assert result_lines({"evaluation": None}, "/s.md") == ["summary: /s.md"]
