"""What a collection does with symbols it cannot fetch, and with no shared limiter: permanent
failures are listed and the run goes on; transient ones end the run with exit 3 (after the later
stages with ``collect.allow_partial``); without Redis the actors never exceed the limit together."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from app.collect.collect import run
from app.errors import IncompleteDataError
from app.stages import run_stages
from tests.conftest import ROOT, compose_config, free_port
from tests.data.test_collect import assert_store_equals, market, overrides, truth

FAST_GIVE_UP = ["kis.retry_attempts=2", "kis.retry_base_s=0.01", "kis.retry_cap_s=0.02"]


def test_unknown_symbol_is_listed_and_the_run_goes_on(tmp_path: Path):
    known = market().symbols[0]
    cfg = compose_config(*overrides(tmp_path / "store", f"data.symbols=[{known},999999]", "collect.workers=0",
                                    "data.start=2024-01-02", "data.end=2024-05-31"))
    run_stages(cfg, tmp_path / "run")  # exit 0: nothing to retry
    manifest = json.loads((tmp_path / "run" / "data_manifest.json").read_text())
    assert "does not list symbol '999999'" in manifest["failed"]["999999"]
    assert manifest["transient_failures"] == []
    assert manifest["data_source"]["kind"] == "sim" and "planted signal" in manifest["data_source"]["label"]
    assert list(cfg.data.symbols) == [known]  # the later stages work on what was collected
    assert_store_equals(tmp_path / "store", truth([known], "2024-01-02", "2024-05-31"))


def test_transient_failure_stops_after_collect_with_exit_3(tmp_path: Path):
    ok, down = market().symbols[:2]
    args = [sys.executable, "-m", "app.main", *overrides(tmp_path / "store"), "stage=[collect,features]",
            f"data.symbols=[{ok},{down}]", f"data.sim.faults.fail_symbols=[{down}]", "collect.workers=0",
            "data.start=2024-01-02", "data.end=2024-05-31", *FAST_GIVE_UP, f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: collection left 1 symbol(s) missing") and down in last and "HTTP 503" in last
    assert "collect.allow_partial=true" in last
    assert not (tmp_path / "store" / "features").exists()  # stopped before the features stage
    manifest = json.loads((tmp_path / "run" / "data_manifest.json").read_text())
    assert manifest["transient_failures"] == [down] and manifest["totals"]["symbols_ok"] == 1
    assert_store_equals(tmp_path / "store", truth([ok], "2024-01-02", "2024-05-31"))  # what was fetched is kept


def test_allow_partial_runs_later_stages_on_the_rest_then_fails_with_exit_3(ray_session, tmp_path: Path):
    syms = market().symbols[:3]
    cfg = compose_config(*overrides(tmp_path / "store"), "stage=[collect,features]",
                         f"data.symbols=[{','.join(syms)}]", f"data.sim.faults.fail_symbols=[{syms[1]}]",
                         "collect.workers=0", "collect.allow_partial=true", "data.start=2023-01-02",
                         "data.end=2024-05-31", *FAST_GIVE_UP)
    with pytest.raises(IncompleteDataError) as info:
        run_stages(cfg, tmp_path / "run")
    assert info.value.exit_code == 3 and syms[1] in str(info.value)
    timings = json.loads((tmp_path / "run" / "stage_timings.json").read_text())
    assert "features" in json.dumps(timings)  # the later stage ran ...
    assert list(cfg.data.symbols) == [syms[0], syms[2]]  # ... on the symbols that were collected


@pytest.mark.slow
def test_without_redis_actors_never_exceed_the_limit_together(ray_session, tmp_path: Path, caplog):
    syms = market().symbols[:8]
    limit = 12
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    cfg = compose_config(*[o for o in overrides(tmp_path / "store") if not o.startswith(("redis.url", "data.sim.rate"))],
                         f"redis.url={dead_redis}", f"data.symbols=[{','.join(syms)}]", "data.start=2021-01-04",
                         "data.end=2024-06-28", f"data.sim.rate_limit={limit}", "collect.workers=2",
                         "collect.batch_size=2")
    with caplog.at_level(logging.WARNING, logger="app.collect.collect"):
        manifest = run(cfg, tmp_path / "run")
    stats = manifest["server_stats"]
    assert manifest["failed"] == {} and stats["rate_limited"] == 0, stats
    assert stats["max_in_window"] <= limit
    assert "collecting with 1 actor at the whole 12 requests/s instead of 2 actors" in caplog.text
    assert manifest["totals"]["requests_per_s_active"] > 0.7 * limit  # one actor still paces near the limit
    assert_store_equals(tmp_path / "store", truth(syms, "2021-01-04", "2024-06-28"))
