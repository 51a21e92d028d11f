"""Predict's settings: the run's data unless the command line gives it, dates, its run folder."""
from __future__ import annotations

import pytest

from app.errors import ConfigError
from app.predict.inputs import apply_run_data, folder_overrides, parse_bound
from tests.conftest import compose_config

DOC = {
    "data": {"source": "sim", "symbols": ["000010", "000020"], "universe": "all", "limit": 2, "start": "2021-01-04",
             "freq": "D", "path": None, "sim": {"seed": 3, "n_symbols": 40, "signal_strength": 0.3}},
    "symbols": ["000010", "000020"], "store_root": "/abs/trained-store", "freq": "D",
}  # fmt: skip


def test_keys_not_given_come_from_the_run():
    cfg = compose_config()
    apply_run_data(cfg, DOC, set())
    assert cfg.data.source == "sim" and list(cfg.data.symbols) == ["000010", "000020"] and cfg.data.universe is None
    assert cfg.store.root == "/abs/trained-store" and cfg.data.start == "2021-01-04"
    assert cfg.data.sim.seed == 3 and cfg.data.sim.signal_strength == 0.3


def test_given_keys_win_key_by_key(tmp_path):
    bars = tmp_path / "bars.csv"
    bars.write_text("symbol,date,open,high,low,close,volume\n")
    cfg = compose_config("data=file", f"data.path={bars}", "data.sim.seed=9", "store.root=/abs/other")
    apply_run_data(cfg, DOC, {"data", "data.source", "data.path", "data.sim.seed", "store.root"})
    assert cfg.data.source == "file" and cfg.data.path == str(bars) and cfg.store.root == "/abs/other"
    assert cfg.data.sim.seed == 9 and cfg.data.sim.n_symbols == 40 and cfg.data.start == "2021-01-04"
    assert list(cfg.data.symbols) == ["000010", "000020"]  # no symbol key given: the bundle's symbols


def test_any_symbol_key_replaces_the_runs_symbols():
    cfg = compose_config("data.universe=all", "data.limit=7")
    apply_run_data(cfg, DOC, {"data.universe", "data.limit"})
    assert list(cfg.data.symbols) == [] and cfg.data.universe == "all" and cfg.data.limit == 7


def test_another_bar_frequency_is_refused():
    cfg = compose_config("data.freq=W")
    with pytest.raises(ConfigError, match="trained on D bars"):
        apply_run_data(cfg, DOC, {"data.freq"})


def test_dates_and_the_run_folder():
    assert parse_bound("2024-01-02", "predict.end", end=True) - parse_bound("2024-01-02", "k", end=False) == 86399
    assert parse_bound(None, "predict.start", end=False) is None
    with pytest.raises(ConfigError, match="is not a date"):
        parse_bound("soon", "predict.start", end=False)
    assert folder_overrides(["stage=predict", "run_dir=x"]) == ["experiment_name=predict"]
    assert folder_overrides(["stage=[collect,predict]"]) == ["experiment_name=predict"]
    assert folder_overrides(["stage=predict", "experiment_name=mine"]) == [] and folder_overrides(["stage=all"]) == []
