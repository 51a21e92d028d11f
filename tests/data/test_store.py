"""The Parquet store: contract conformance, atomic replace, merge without duplicates, manifest."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.contracts import BARS_SCHEMA, daily_ts
from app.collect.store import BarStore, conform
from app.errors import DataError


def bars(symbol: str, days: list[int], close: float = 100.0) -> pa.Table:
    rows = [
        dict(symbol=symbol, ts=daily_ts(dt.date(2024, 1, d)), open=close, high=close + 1, low=close - 1,
             close=close, volume=10 * d, value=1000 * d, adjusted=True)
        for d in days
    ]
    return pa.Table.from_pylist(rows, schema=BARS_SCHEMA)


def test_conform_sorts_and_keeps_last_duplicate():
    t = pa.concat_tables([bars("005930", [4, 2, 3]), bars("005930", [3], close=200.0)])
    out = conform(t)
    assert [v.day for v in out["ts"].to_pylist()] == [2, 3, 4]
    assert out["close"].to_pylist() == [100.0, 200.0, 100.0]
    assert out.schema == BARS_SCHEMA


def test_write_read_range_and_manifest(tmp_path: Path):
    store = BarStore(tmp_path)
    store.write("D", "005930", bars("005930", [2, 3, 4]), source="sim")
    assert store.symbols("D") == ["005930"]
    first, last = store.ts_range("D", "005930")
    assert (first.day, last.day) == (2, 4) and first.tzinfo is not None
    entry = store.manifest("D")["005930"]
    assert (entry.rows, entry.source) == (3, "sim")
    assert entry.first_ts.startswith("2024-01-02T15:30")


def test_merge_adds_only_new_rows(tmp_path: Path):
    store = BarStore(tmp_path)
    store.write("D", "000660", bars("000660", [2, 3]), source="sim")
    store.merge("D", "000660", bars("000660", [3, 4, 5]), source="sim")
    table = store.read("D", "000660")
    assert [v.day for v in table["ts"].to_pylist()] == [2, 3, 4, 5]
    assert store.manifest("D")["000660"].rows == 4


def test_partitions_are_lz4_with_a_dictionary_on_the_symbol_only_and_older_zstd_files_still_merge(tmp_path: Path):
    store = BarStore(tmp_path)
    path = Path(store.partition("D", "035420"))
    path.parent.mkdir(parents=True)
    pq.write_table(bars("035420", [2, 3]), path, compression="zstd")  # as earlier versions wrote it
    store.merge("D", "035420", bars("035420", [3, 4], close=150.0), source="sim")
    table = store.read("D", "035420")
    assert [v.day for v in table["ts"].to_pylist()] == [2, 3, 4]
    assert table["close"].to_pylist() == [100.0, 150.0, 150.0]
    meta = pq.ParquetFile(path).metadata.row_group(0)
    columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert len({c.compression for c in columns.values()}) == 1 and columns["close"].compression.startswith("LZ4")
    dictionary = {name for name, c in columns.items() if c.has_dictionary_page}
    assert dictionary == {"symbol"}


def test_failed_write_leaves_old_partition_intact(tmp_path: Path, monkeypatch):
    store = BarStore(tmp_path)
    store.write("D", "005930", bars("005930", [2, 3]), source="sim")
    before = Path(store.partition("D", "005930")).read_bytes()

    def boom(table, where, **kw):
        Path(where).write_bytes(b"torn")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError):
        store.merge("D", "005930", bars("005930", [4]), source="sim")
    assert Path(store.partition("D", "005930")).read_bytes() == before
    leftovers = [p for p in Path(store.partition("D", "005930")).parent.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_rows_of_other_symbols_are_refused(tmp_path: Path):
    store = BarStore(tmp_path)
    with pytest.raises(DataError):
        store.write("D", "005930", bars("000660", [2]), source="sim")


def test_rebuild_manifest_after_crash_between_writes(tmp_path: Path):
    store = BarStore(tmp_path)
    store.write("D", "005930", bars("005930", [2, 3]), source="sim")
    # The partition grew but the manifest write never happened (a crash in between).
    table = pa.concat_tables([store.read("D", "005930"), bars("005930", [4])])
    pq.write_table(table, store.partition("D", "005930"))
    assert store.manifest("D")["005930"].rows == 2
    assert store.rebuild_manifest("D")["005930"].rows == 3
    assert store.manifest("D")["005930"].source == "sim"


def test_unknown_frequency_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DataError, match="unknown frequency"):
        BarStore(tmp_path).partition("5m", "005930")


def test_recover_removes_a_killed_writers_temporary_files_and_rebuilds_the_manifest(tmp_path: Path):
    store = BarStore(tmp_path)
    store.write("D", "005930", bars("005930", [2, 3]), source="sim")
    part = Path(store.partition("D", "005930"))
    (part.parent / ".tmp-abc123").write_bytes(b"PAR1 half a file")  # killed between mkstemp and rename
    pq.write_table(pa.concat_tables([store.read("D", "005930"), bars("005930", [4])]), part)
    assert store.recover() == 1
    assert not list(tmp_path.rglob(".tmp-*")) and store.symbols("D") == ["005930"]
    assert store.manifest("D")["005930"].rows == 3
