"""Source ``file``: a user's CSV or Parquet bars (``data.path``), validated and stored under the
same contract as collected bars (:mod:`app.collect.file_source` reads and checks the rows)."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from app.collect.file_source import BAD_ROWS, check_rows, load_file
from app.collect.sources import describe_file
from app.collect.store import BarStore
from app.errors import ConfigError
from app.run_folder import REJECTED_ROWS, RunFolder

if TYPE_CHECKING:
    from app.config import AppConfig


def collect_file(cfg: AppConfig, run_dir: Path, root: str) -> dict:
    """Validate a user's file and store it under the bars contract; returns the data manifest."""
    started = time.perf_counter()
    path = Path(cfg.data.path).expanduser()
    loaded = load_file(path)
    if len(loaded.rejected):
        RunFolder(run_dir).write_frame(REJECTED_ROWS, loaded.rejected)
    check_rows(path.name, loaded, cfg.data.on_bad_rows)
    store = BarStore(root)
    name = f"file:{path.name}"
    table = loaded.bars
    symbols = sorted(set(table["symbol"].to_pylist()))
    for symbol in symbols:
        store.merge(cfg.data.freq, symbol, table.filter(pc.equal(table["symbol"], symbol)), name)
    seconds = time.perf_counter() - started
    manifest = {
        "source": name, "freq": cfg.data.freq, "store_root": str(root),
        "data_source": describe_file(path),
        "symbols": {s: asdict(e) for s, e in store.manifest(cfg.data.freq).items() if s in symbols},
        "failed": {}, "rejected_rows": loaded.counts, "repaired_rows": loaded.repaired,
        "symbols_with_holes": loaded.holes,
        "totals": {"symbols": len(symbols), "symbols_ok": len(symbols), "bars_fetched": table.num_rows,
                   "rows_added": table.num_rows, "seconds": round(seconds, 3),
                   "bars_per_s": round(table.num_rows / max(seconds, 1e-9), 1)},
    }
    return manifest


class FileSource:
    def check(self, cfg: AppConfig) -> None:
        data = cfg.data
        if data.on_bad_rows not in BAD_ROWS:
            raise ConfigError(f"data.on_bad_rows={data.on_bad_rows!r} is unknown",
                              f"use one of {', '.join(BAD_ROWS)}")
        if data.source != "file":
            return
        if not data.path:
            raise ConfigError("data=file needs data.path", "add data.path=/abs/path/to/bars.parquet (or .csv)")
        if not Path(data.path).expanduser().is_file():
            raise ConfigError(f"data.path={data.path} is not a file",
                              "give the path of a CSV or Parquet file of bars")

    def collect(self, cfg: AppConfig, run_dir: Path, store_root: str) -> dict:
        return collect_file(cfg, run_dir, store_root)


FILE = FileSource()
