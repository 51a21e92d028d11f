"""One tiny simulator market turned into a features dataset, shared by every sweep test.

The bars come straight from the simulator's ``Market`` (no HTTP) built from the same
``data.sim`` settings the config holds, so the train stage's oracle column matches them.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, compose_config

#: A small market: 6 symbols, about two and a half years of sessions.
DATA_OVERRIDES = [
    "data.source=sim",
    "data.sim.n_symbols=6",
    "data.sim.start=2022-01-03",
    "data.sim.today=2024-06-28",
    "data.start=2022-01-03",
    "data.freq=D",
    "features.alpha158.rolling=[ROC,STD,CORR]",
    "features.alpha158.windows=[5,20]",
]


def base_overrides(store_root: Path) -> list[str]:
    return [*DATA_OVERRIDES, f"store.root={store_root}"]


def tune_node(model: str = "lstm", **values) -> dict:
    """``conf/tune/base.yaml`` + ``conf/tune/<model>.yaml`` as the composed config holds them, plus ``values``."""
    node = {}
    for name in ("base", model):
        text = yaml.safe_load((ROOT / "conf" / "tune" / f"{name}.yaml").read_text())
        text.pop("defaults", None)
        node.update(text)
    node["seed"] = 42
    node.update(values)
    return node


def with_tune(cfg, **values):
    """The config with its ``tune`` node set to the model's defaults plus ``values``."""
    from app.tune.config import TuneConfig
    from app.typed import typed

    cfg.tune = typed(TuneConfig, tune_node(str(cfg.model["_target_"]).split(".")[2], **values), "tune")
    return cfg


@pytest.fixture(scope="session")
def features_store(tmp_path_factory, ray_session):
    """The store root holding the bars and the features dataset (built once per session)."""
    from app.features.features import run as build_features
    from app.collect.sources import sim_config
    from app.collect.store import BarStore
    from app.kis.credentials import Credentials
    from app.sim.market import Market

    root = tmp_path_factory.mktemp("tune_store")
    cfg = compose_config(*base_overrides(root))
    market = Market(sim_config(cfg, Credentials("test-key", "test-secret")).market)
    store = BarStore(root)
    for symbol in market.symbols:
        store.write("D", symbol, market.daily_bars(symbol), source="sim")
    build_features(cfg)
    return root


@pytest.fixture(scope="session")
def make_cfg(features_store):
    """``make_cfg(*overrides, model="lstm", **tune_values)``: a composed config over the shared features."""

    def make(*overrides: str, **tune_values):
        cfg = compose_config(*base_overrides(features_store), *overrides)
        return with_tune(cfg, **tune_values)

    return make


def write_hydra_overrides(run_dir: Path, overrides: list[str]) -> None:
    """What Hydra saves in a run folder (the best-config file starts from these)."""
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))


def result_rows(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
