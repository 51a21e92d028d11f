"""Collection against the embedded simulator over HTTP: exact, incremental, parallel, fault-tolerant."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest

from app.collect.collect import run
from app.collect.store import BarStore
from app.errors import DataError
from app.sim.config import MarketConfig
from app.sim.market import Market
from tests.conftest import compose_config, shared_redis_url

SEED, N, TODAY = 11, 12, "2024-06-28"


def market() -> Market:
    return Market(MarketConfig(seed=SEED, n_symbols=N, start="2021-01-04", today=TODAY))


def overrides(root: Path, *extra: str) -> list[str]:
    return [
        "stage=collect", "data=sim", f"data.sim.seed={SEED}", f"data.sim.n_symbols={N}",
        "data.sim.start=2021-01-04", f"data.sim.today={TODAY}", "data.sim.rate_limit=0",
        f"store.root={root}", "redis.url=null", *extra,
    ]


def truth(symbols: list[str], start: str, end: str, freq: str = "D", adjusted: bool = True) -> dict[str, pa.Table]:
    m = market()
    s, e = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return {sym: m.daily_bars(sym, s, e, period=freq, adjusted=adjusted) for sym in symbols}


def assert_store_equals(root: Path, expected: dict[str, pa.Table], freq: str = "D") -> None:
    store = BarStore(root)
    assert store.symbols(freq) == sorted(expected)
    for sym, table in expected.items():
        got = store.read(freq, sym)
        assert got.num_rows == table.num_rows > 0, sym
        assert got.equals(table.cast(got.schema)), sym


def test_single_process_collect_equals_ground_truth(tmp_path: Path):
    syms = market().symbols[:3]
    cfg = compose_config(*overrides(tmp_path / "store", f"data.symbols=[{','.join(syms)}]",
                                    "data.start=2021-03-02", "data.end=2024-05-31", "collect.workers=0"))
    manifest = run(cfg, tmp_path / "run")
    assert_store_equals(tmp_path / "store", truth(syms, "2021-03-02", "2024-05-31"))
    saved = json.loads((tmp_path / "run" / "data_manifest.json").read_text())
    assert saved["totals"]["symbols_ok"] == 3 and saved["totals"]["requests"] >= 3 * 8
    assert manifest["failed"] == {}


def test_incremental_run_fetches_only_missing_and_leaves_complete_partitions(tmp_path: Path):
    syms = market().symbols[:3]
    root = tmp_path / "store"
    base = overrides(root, "collect.workers=0", "data.start=2023-01-02")
    run(compose_config(*base, f"data.symbols=[{','.join(syms[:2])}]", "data.end=2024-03-29"), tmp_path / "r1")
    stamps = {s: Path(BarStore(root).partition("D", s)).stat().st_mtime_ns for s in syms[:2]}
    # Same range again: nothing new, nothing rewritten.
    again = run(compose_config(*base, f"data.symbols=[{','.join(syms[:2])}]", "data.end=2024-03-29"), tmp_path / "r2")
    assert again["totals"]["rows_added"] == 0
    assert {s: Path(BarStore(root).partition("D", s)).stat().st_mtime_ns for s in syms[:2]} == stamps
    # Extended at both ends, plus a new symbol.
    ext = run(compose_config(*base[:-1], "data.start=2022-06-01", f"data.symbols=[{','.join(syms)}]",
                             "data.end=2024-06-28"), tmp_path / "r3")
    assert ext["totals"]["rows_added"] > 0
    assert_store_equals(root, truth(syms, "2022-06-01", "2024-06-28"))


def test_minute_bars_of_the_current_session(tmp_path: Path):
    syms = market().symbols[:2]
    cfg = compose_config(*overrides(tmp_path / "store", f"data.symbols=[{','.join(syms)}]", "data.freq=1m",
                                    f"data.start={TODAY}", "collect.workers=0"))
    run(cfg, tmp_path / "run")
    m = market()
    assert_store_equals(tmp_path / "store", {s: m.minute_bars(s) for s in syms}, freq="1m")


def test_minute_bars_of_past_sessions_then_incrementally(tmp_path: Path):
    m, syms = market(), market().symbols[:2]
    root = tmp_path / "store"
    base = overrides(root, f"data.symbols=[{','.join(syms)}]", "data.freq=1m", "collect.workers=0")
    run(compose_config(*base, "data.start=2024-06-20", "data.end=2024-06-25"), tmp_path / "r1")
    days = [d for d in m.sessions() if dt.date(2024, 6, 20) <= d]
    expected = {s: pa.concat_tables([m.minute_bars(s, d) for d in days if d <= dt.date(2024, 6, 25)]) for s in syms}
    assert_store_equals(root, expected, freq="1m")
    # Later sessions are added to the stored ones; nothing is stored twice.
    out = run(compose_config(*base, "data.start=2024-06-20", f"data.end={TODAY}"), tmp_path / "r2")
    assert out["totals"]["rows_added"] == 2 * 3 * 381
    assert_store_equals(root, {s: pa.concat_tables([m.minute_bars(s, d) for d in days]) for s in syms}, freq="1m")


def test_unknown_symbol_is_reported_and_the_rest_collect(tmp_path: Path):
    good = market().symbols[0]
    cfg = compose_config(*overrides(tmp_path / "store", f"data.symbols=[{good},999999]", "collect.workers=0",
                                    "data.start=2024-01-02"))
    manifest = run(cfg, tmp_path / "run")
    assert list(manifest["failed"]) == ["999999"]
    assert "999999" in manifest["failed"]["999999"] or "stock code" in manifest["failed"]["999999"]
    assert BarStore(tmp_path / "store").symbols("D") == [good]
    only_bad = compose_config(*overrides(tmp_path / "store2", "data.symbols=[999999]", "collect.workers=0"))
    with pytest.raises(DataError, match="no symbol could be collected"):
        run(only_bad, tmp_path / "run2")


def test_file_source_stage(tmp_path: Path):
    import pandas as pd

    path = tmp_path / "bars.csv"
    pd.DataFrame({"symbol": ["005930", "005930", "000660"], "date": ["2024-01-02", "2024-01-03", "2024-01-02"],
                  "open": [1, 2, 3], "high": [2, 3, 2], "low": [1, 1, 1], "close": [1.5, 2.5, 1.5],
                  "volume": [1, 2, 3]}).to_csv(path, index=False)
    cfg = compose_config("stage=collect", "data=file", f"data.path={path}", f"store.root={tmp_path / 'store'}")
    manifest = run(cfg, tmp_path / "run")
    assert manifest["rejected_rows"] == {"high below open/close": 1}
    assert BarStore(tmp_path / "store").symbols("D") == ["005930"]
    assert (tmp_path / "run" / "rejected_rows.csv").exists()


def test_runs_without_redis_with_a_warning_and_fills_the_hot_cache_with_it(tmp_path: Path, caplog, redis_prefix):
    from app.collect.hot_cache import HotCache
    from tests.conftest import free_port

    sym = market().symbols[0]
    base = [o for o in overrides(tmp_path / "store") if not o.startswith("redis.url")]
    dead = compose_config(*base, f"data.symbols=[{sym}]", "collect.workers=0", "data.start=2024-05-02",
                          f"redis.url=redis://127.0.0.1:{free_port()}/0")
    with caplog.at_level("WARNING"):
        assert run(dead, tmp_path / "run1")["totals"]["symbols_ok"] == 1
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    # With Redis, the newest bar lands in the hot cache for other processes to read.
    live = compose_config(*base, f"data.symbols=[{sym}]", "collect.workers=0", "data.start=2024-05-02",
                          f"redis.url={shared_redis_url()}", f"redis.key_prefix={redis_prefix}")
    run(live, tmp_path / "run2")
    latest = HotCache(shared_redis_url(), redis_prefix, 60).get_latest("D", sym)
    stored = BarStore(tmp_path / "store").read("D", sym)
    last = stored.slice(stored.num_rows - 1).to_pylist()[0]
    assert latest["ts"] == last["ts"].isoformat() and latest["close"] == last["close"]


def test_universe_all_comes_from_the_master_files_with_a_limit(tmp_path: Path):
    cfg = compose_config(*overrides(tmp_path / "store", "data.universe=all", "data.limit=3", "collect.workers=0",
                                    "data.start=2024-06-03"))
    manifest = run(cfg, tmp_path / "run")
    listed = sorted(market().symbols)
    assert sorted(manifest["symbols"]) == listed[:3]
    assert BarStore(tmp_path / "store").symbols("D") == listed[:3]


def test_a_final_latest_bar_in_the_hot_cache_saves_the_refetch_of_the_last_stored_bar(tmp_path: Path, redis_prefix):
    syms = market().symbols[:3]
    base = [o for o in overrides(tmp_path / "store") if not o.startswith("redis.url")]
    args = [*base, f"data.symbols=[{','.join(syms)}]", "collect.workers=0", "data.start=2024-05-02", f"data.end={TODAY}"]
    cached = compose_config(*args, f"redis.url={shared_redis_url()}", f"redis.key_prefix={redis_prefix}")
    first = run(cached, tmp_path / "run1")["totals"]
    assert first["requests"] >= 3 and first["rows_added"] > 0
    # The same range again: every last bar is in the cache, fetched long after its session (final).
    again = run(cached, tmp_path / "run2")["totals"]
    assert (again["requests"], again["symbols_unchanged"], again["bars_fetched"]) == (0, 3, 0)
    # Without the cache the last bar of each symbol is fetched again, as it might be provisional.
    uncached = run(compose_config(*args, "redis.url=null"), tmp_path / "run3")["totals"]
    assert uncached["requests"] == 3 and uncached["symbols_unchanged"] == 3
    assert_store_equals(tmp_path / "store", truth(syms, "2024-05-02", TODAY))


def test_only_a_final_cached_bar_equal_to_the_stored_one_skips_the_refetch():
    from app.collect.collect_symbol import CollectSpec, without_final_overlap
    from app.collect.hot_cache import is_final
    from app.collect.plan import missing_ranges

    bars = truth(market().symbols[:1], "2024-06-03", TODAY)[market().symbols[0]]
    last = bars.slice(bars.num_rows - 1).to_pylist()[0]
    spec = CollectSpec("D", dt.date(2024, 6, 3), dt.date(2024, 6, 28), True, "sim", "/unused")
    ranges = missing_ranges((bars["ts"][0].as_py(), last["ts"]), spec.start, spec.end)

    def entry(fetched: str, **change) -> dict:
        return {**last, "ts": last["ts"].isoformat(), "fetched_at": f"{fetched}+09:00", **change}

    assert not is_final(entry("2024-06-28T17:59:00"), "D") and is_final(entry("2024-06-28T18:00:00"), "D")
    assert not is_final(entry("2024-07-01T09:00:00"), "W")  # a period bar: left alone
    assert without_final_overlap(ranges, bars, entry("2024-06-29T09:00:00"), spec) == []
    for stale in (entry("2024-06-28T11:00:00"), entry("2024-06-29T09:00:00", close=last["close"] + 1), None):
        assert without_final_overlap(ranges, bars, stale, spec) == ranges  # provisional, different, missing
    later = CollectSpec("D", spec.start, dt.date(2024, 7, 2), True, "sim", "/unused")  # newer sessions to fetch
    assert without_final_overlap(missing_ranges((bars["ts"][0].as_py(), last["ts"]), spec.start, later.end), bars,
                                 entry("2024-06-29T09:00:00"), later) != []
