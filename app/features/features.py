"""The features stage: Bars store → Features dataset, with plain Ray tasks.

Whole symbols per task, by construction: the stage is a list of *tasks*, each naming a few
symbols; a Ray task reads those symbols' complete store files itself, computes their features as
one panel (one column per symbol, see :mod:`app.features.panel`) and writes one Parquet file. No Ray
read splits a symbol and no shuffle runs (``groupby().map_groups`` would shuffle every row between
the two cores; see docs/features.md for the measurement). The tasks are independent and their
output is files, so they run as plain Ray tasks, not Ray Data: its streaming executor and the two
actors it starts cost CPU and memory here and bought nothing (docs/BENCHMARKS.md).

Output layout (``features.path``, default ``<store.root>/features/freq=<freq>``)::

    part-00000.parquet ...   # Features contract; whole symbols, sorted by (symbol, ts)
    _manifest.json           # configs, feature columns, warm-up bars, files and their symbols

A rebuild writes into a fresh sibling directory and swaps it in at the end, so readers never
see a half-written dataset.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from app import storage
from app.arrow_numpy import arrow_of, numpy_of
from app.collect.store import BarStore
from app.contracts import BARS_SCHEMA, KST, normalize_symbol
from app.errors import DataError
from app.features.allocator import keep_freed_memory
from app.features.feature_compute import (
    TS_TYPE, compute_features, feature_names, group_layout, validate_features, warmup_bars,
)
from app.features.feature_config import MAX_SYMBOLS_PER_TASK, FeaturesConfig, LabelConfig
from app.features.labels import cross_sectional_rank, forward_labels, validate_label
from app.progress import ProgressLine
from app.typed import typed

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
FORMAT_VERSION = 1
COMPUTE_SYMBOLS = 8  # symbols per panel: (T, 8) panels stay in CPU cache; measured ~2x faster than 64
CHUNK_ROWS = 50_000  # rows computed at once when series are sessions: bounds a task's memory
WRITE_BATCH = 65_536  # values Parquet encodes per step (default 1,024): measured 7 % cheaper writes


@dataclass(frozen=True)
class FeaturesInfo:
    """What a build wrote; also what :func:`read_manifest` returns for an existing dataset."""

    path: str
    files: list[dict[str, Any]]
    feature_columns: list[str]
    warmup_bars: int
    label: dict[str, Any]
    features: dict[str, Any]
    freq: str
    rows: int
    created_at: str

    @property
    def file_paths(self) -> list[str]:
        return [storage.join(self.path, f["file"]) for f in self.files]

    @property
    def symbols(self) -> list[str]:
        return [s for f in self.files for s in f["symbols"]]


def default_features_path(store_root: str, freq: str) -> str:
    return storage.join(storage.absolute(store_root), "features", f"freq={freq}")


def read_manifest(path: str) -> FeaturesInfo:
    path = storage.absolute(path)
    fs, where = storage.filesystem(path)
    try:
        with fs.open_input_stream(f"{where}/{MANIFEST}") as fh:
            data = json.loads(fh.read())
    except FileNotFoundError:
        raise DataError(f"no features dataset at {path}", "run the features stage first (stage=features)") from None
    data.pop("format", None)
    return FeaturesInfo(path=path, **data)


TS_COLUMNS = ("ts", "label_ts", "label_rank_ts")


def read_features(path: str, columns: list[str] | None = None) -> pa.Table:
    """A features file or dataset directory with its timestamps back at the contract's second unit.

    Parquet stores ``timestamp[s]`` as milliseconds; this casts ``ts``/``label_ts`` back.
    """
    fs, where = storage.filesystem(path)
    table = pq.read_table(where, columns=columns, filesystem=fs)
    for name in TS_COLUMNS:
        if name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, table.schema.field(i).with_type(TS_TYPE), table[name].cast(TS_TYPE))
    return table


def plan_tasks(symbols: list[str], per_task: int | None, cpus: int) -> list[list[str]]:
    """Symbols cut into tasks: at least four per CPU (the last round stays short), at most 32 symbols each."""
    if per_task is None:
        per_task = max(1, min(MAX_SYMBOLS_PER_TASK, math.ceil(len(symbols) / max(1, 4 * cpus))))
    return [symbols[i : i + per_task] for i in range(0, len(symbols), per_task)]


def _read_bars(store_root: str, freq: str, symbols: list[str], columns: list[str] | None = None) -> pa.Table:
    store, names = BarStore(store_root), columns or list(BARS_SCHEMA.names)
    return pa.concat_tables([store.read(freq, s, names) for s in symbols])


def _task_labels(store_root: str, freq: str, symbols: list[str], label: LabelConfig,
                 features: FeaturesConfig) -> pa.Table:  # fmt: skip
    """The narrow (ts, label, label_ts) columns of one task, in its (symbol, ts) order: input of the rank step."""
    bars = _read_bars(store_root, freq, symbols, ["symbol", "ts", "open", "close"])
    ts = numpy_of(pc.cast(bars["ts"], pa.int64()))
    layout = group_layout(bars, features)  # labels stay within a session where the features do
    panel = {k: layout.to_panel(numpy_of(bars[k]).astype(np.float64)) for k in ("open", "close")}
    lab, lab_ts = forward_labels(panel["close"], panel["open"], layout.to_panel(ts.astype(np.float64)), label)
    long = {"ts": ts, "label": layout.to_long(lab), "label_ts": layout.to_long(lab_ts)}
    return pa.table({k: arrow_of(v) for k, v in long.items()})


class _TaskFile:
    """One task's Parquet file, written chunk by chunk and put in place only when complete: locally by a
    rename; on an object store by one upload of the finished file (an object shows once uploaded)."""

    def __init__(self, task: int, out_dir: str, compression: str) -> None:
        name = f"part-{task:05d}.parquet"
        self.remote = storage.is_uri(out_dir)
        if self.remote:
            self.fs, where = storage.filesystem(out_dir)
            self.final: Path | str = f"{where}/{name}"
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{name}")
            os.close(fd)
            self.tmp = Path(tmp)
        else:
            self.final = Path(out_dir) / name
            self.tmp = self.final.with_name(f".tmp-{uuid.uuid4().hex}-{name}")
        self.compression = compression
        self.writer: pq.ParquetWriter | None = None
        self.rows, self.first_ts, self.last_ts = 0, None, None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression=self.compression,
                                           use_dictionary=["symbol"], write_statistics=["ts", "symbol"],
                                           write_batch_size=WRITE_BATCH)  # fmt: skip
        self.writer.write_table(table)
        if table.num_rows:
            ts = pc.cast(table["ts"], pa.int64())
            lo, hi = pc.min(ts).as_py(), pc.max(ts).as_py()
            self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
            self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        self.rows += table.num_rows

    def close(self, complete: bool) -> None:
        try:
            if self.writer is not None:
                self.writer.close()
                if complete and self.remote:
                    pafs.copy_files(str(self.tmp), str(self.final), source_filesystem=pafs.LocalFileSystem(),
                                    destination_filesystem=self.fs)  # fmt: skip
                elif complete:
                    os.replace(self.tmp, self.final)
        finally:
            self.tmp.unlink(missing_ok=True)


def chunks(bars: pa.Table, cfg: FeaturesConfig) -> list[tuple[int, int]]:
    """(offset, rows) slices of a table sorted by (symbol, ts), each of whole series (a symbol, or a
    session when features are session bound) and of at most :data:`CHUNK_ROWS` rows unless one
    series is longer."""
    if bars.num_rows <= CHUNK_ROWS:
        return [(0, bars.num_rows)]  # all of it (an empty table still makes one file with the schema)
    layout = group_layout(bars.select(["symbol", "ts"]), cfg)
    cuts = [0]
    for start, n in zip(layout.starts, layout.lengths):
        if start > cuts[-1] and start + n - cuts[-1] > CHUNK_ROWS:
            cuts.append(int(start))
    cuts.append(bars.num_rows)
    return [(a, b - a) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _task_features(task: int, task_ranks: dict[str, np.ndarray] | None, **kw: Any) -> _TaskFile:
    """Features of one task's symbols, written a few whole symbols (or a chunk of whole sessions) at a time."""
    symbols, offset, complete = kw["tasks"][task], 0, False
    out = _TaskFile(task, kw["out_dir"], kw["features"].compression)
    try:
        for i in range(0, len(symbols), COMPUTE_SYMBOLS):
            bars = _read_bars(kw["store_root"], kw["freq"], symbols[i : i + COMPUTE_SYMBOLS])
            for lo, n in chunks(bars, kw["features"]):
                at = offset + lo
                rank = None if task_ranks is None else {k: v[at : at + n] for k, v in task_ranks.items()}
                out.write(compute_features(bars.slice(lo, n), kw["features"], kw["label"], rank))
            offset += bars.num_rows
        complete = True
    finally:
        out.close(complete)
    return out


def _feature_task(task: int, kw: dict[str, Any], ranks: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """One Ray task: compute and write one task's file; its summary for the manifest.

    The summary also names the feature columns and the warm-up bars, which the task knows from
    computing them: the driver then never runs the compiled kernels itself (a job's driver runs
    from a fresh copy of the code, where loading them means compiling them first: about 10 s)."""
    keep_freed_memory()
    written = _task_features(task, ranks, **kw)
    return {"task": task, "rows": written.rows, "first_ts": written.first_ts, "last_ts": written.last_ts,
            "columns": feature_names(kw["features"]), "warmup_bars": warmup_bars(kw["features"])}  # fmt: skip


def _label_task(task: int, kw: dict[str, Any]) -> pa.Table:
    """One Ray task: the narrow label columns of one task, tagged with the task and row."""
    keep_freed_memory()
    part = _task_labels(kw["store_root"], kw["freq"], kw["tasks"][task], kw["label"], kw["features"])
    part = part.append_column("task", arrow_of(np.full(part.num_rows, task, np.int64)))
    return part.append_column("row", arrow_of(np.arange(part.num_rows, dtype=np.int64)))


def _remote_map(fn, n_tasks: int, num_cpus: float, shared: dict[str, Any], per_task: list | None = None,
                what: str = "features") -> list:
    """``fn(task, shared[, per_task[task]])`` for every task as Ray tasks; results in task order.

    ``shared`` goes to the object store once; Ray runs as many tasks at once as the CPUs allow. A
    progress line (live on a terminal, every few seconds in the log) counts the finished tasks.
    """
    import ray

    run, ref = ray.remote(num_cpus=num_cpus)(fn), ray.put(shared)
    extra = [() if per_task is None else (per_task[t],) for t in range(n_tasks)]
    refs = [run.remote(t, ref, *extra[t]) for t in range(n_tasks)]
    symbols = {r: len(shared["tasks"][t]) for t, r in enumerate(refs)}
    done, started, pending = {"tasks": 0, "symbols": 0}, time.monotonic(), refs
    line = ProgressLine(lambda: f"{what}: {done['tasks']}/{n_tasks} tasks ({done['symbols']}/{sum(symbols.values())} "
                                f"symbols) in {time.monotonic() - started:.0f} s")  # fmt: skip
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
        done["tasks"] += len(ready)
        done["symbols"] += sum(symbols[r] for r in ready)
        line.update()
    line.close()
    return ray.get(refs)


def _rank_inputs(common: dict[str, Any], n_tasks: int, cpus_per_task: float) -> dict[int, dict[str, np.ndarray]]:
    """The cross-symbol step: labels of every symbol, ranked per ts, cut back into tasks."""
    narrow = pa.concat_tables(_remote_map(_label_task, n_tasks, cpus_per_task, common, what="labels to rank"))
    task = narrow["task"].to_numpy()
    order = np.lexsort((narrow["row"].to_numpy(), task))  # back to each task's (symbol, ts) order
    rank, reach = cross_sectional_rank(
        narrow["ts"].to_numpy(), narrow["label"].to_numpy(zero_copy_only=False),
        narrow["label_ts"].to_numpy(zero_copy_only=False),
    )  # fmt: skip
    rank, reach, task = rank[order], reach[order], task[order]
    bounds = np.searchsorted(task, np.arange(n_tasks + 1))
    return {
        t: {"label_rank": rank[bounds[t] : bounds[t + 1]], "label_rank_ts": reach[bounds[t] : bounds[t + 1]]}
        for t in range(n_tasks)
    }


def _swap_in(tmp_dir: Path, out_dir: Path) -> None:
    old = out_dir.with_name(f".old-{uuid.uuid4().hex}-{out_dir.name}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp_dir, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _cluster_cpus() -> int:
    import ray

    if not ray.is_initialized():
        return os.cpu_count() or 1
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _symbols_in_store(store_root: str, freq: str, symbols: list[str] | None) -> list[str]:
    stored = BarStore(store_root).symbols(freq)
    if not stored:
        where = storage.join(storage.absolute(store_root), "bars")
        raise DataError(f"no {freq} bars under {where}", "run the collect stage first")
    if not symbols:
        return stored
    wanted = [normalize_symbol(s) for s in symbols]
    missing = sorted(set(wanted) - set(stored))
    if missing:
        raise DataError(
            f"no {freq} bars for {', '.join(missing[:5])}", "collect them first or drop them from data.symbols"
        )
    return sorted(set(wanted))


def build_features(
    store_root: str,
    features: FeaturesConfig | Any = None,
    label: LabelConfig | Any = None,
    *,
    freq: str = "D",
    symbols: list[str] | None = None,
    path: str | None = None,
) -> FeaturesInfo:
    """Compute the Features dataset of the store's ``freq`` bars (all symbols, or ``symbols``)."""
    import ray  # noqa: F401 - the first Ray task starts a local instance if the caller did not

    features, label = typed(FeaturesConfig, features), typed(LabelConfig, label)
    validate_features(features)
    validate_label(label)
    started = time.perf_counter()
    out_dir = storage.absolute(path or features.path or default_features_path(store_root, freq))
    tasks = plan_tasks(_symbols_in_store(store_root, freq, symbols), features.symbols_per_task, _cluster_cpus())
    common = dict(store_root=storage.absolute(store_root), freq=freq, tasks=tasks, features=features, label=label)
    ranks = _rank_inputs(common, len(tasks), features.num_cpus_per_task) if label.rank else None
    build = _build_remote if storage.is_uri(out_dir) else _build_local
    info = build(out_dir, lambda where: _run_tasks(common, ranks, where), tasks, features, label, freq)
    log.info("features: %d rows of %d symbols in %.1f s -> %s", info.rows, len(info.symbols),
             time.perf_counter() - started, out_dir)  # fmt: skip
    return info


def _run_tasks(common: dict[str, Any], ranks, out_dir: str) -> list[dict]:
    """Every task computes and writes its file under ``out_dir``; returns their summaries in task order.
    Each task gets only its own slice of ``ranks``."""
    n_tasks = len(common["tasks"])
    per_task = [None if ranks is None else ranks[t] for t in range(n_tasks)]
    return _remote_map(_feature_task, n_tasks, common["features"].num_cpus_per_task, {**common, "out_dir": out_dir},
                       per_task)  # fmt: skip


def _build_local(out_dir: str, run_tasks, tasks, features, label, freq) -> FeaturesInfo:
    """Build in a sibling folder, then swap it in by renames: readers see the old or the new dataset."""
    final = Path(out_dir)
    tmp_dir = final.with_name(f".building-{uuid.uuid4().hex}-{final.name}")
    tmp_dir.mkdir(parents=True)
    try:
        info = _manifest(out_dir, tasks, run_tasks(str(tmp_dir)), features, label, freq)
        (tmp_dir / MANIFEST).write_text(json.dumps(_manifest_json(info), indent=1))
        _swap_in(tmp_dir, final)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return info


def _build_remote(out_dir: str, run_tasks, tasks, features, label, freq) -> FeaturesInfo:
    """On an object store, which cannot rename a folder: the files go to a new ``build-<id>/`` folder
    and the manifest, one object written last, is the switch; older builds are removed after it."""
    fs, where = storage.filesystem(out_dir)
    build = f"build-{dt.datetime.now(KST):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
    info = _manifest(out_dir, tasks, run_tasks(storage.join(out_dir, build)), features, label, freq, prefix=f"{build}/")
    storage.put_object(fs, f"{where}/{MANIFEST}", json.dumps(_manifest_json(info), indent=1).encode())
    for old in fs.get_file_info(pafs.FileSelector(where, allow_not_found=True)):
        if old.type == pafs.FileType.Directory and old.base_name.startswith("build-") and old.base_name != build:
            fs.delete_dir(old.path)
    return info


def _manifest(out_dir: str, tasks, summaries, features: FeaturesConfig, label: LabelConfig, freq: str,
              prefix: str = "") -> FeaturesInfo:
    def iso(sec):
        return None if sec is None else dt.datetime.fromtimestamp(int(sec), KST).isoformat()

    files = [
        {"file": f"{prefix}part-{int(s['task']):05d}.parquet", "symbols": tasks[int(s["task"])], "rows": int(s["rows"]),
         "first_ts": iso(s["first_ts"]), "last_ts": iso(s["last_ts"])}
        for s in summaries
    ]  # fmt: skip
    columns, n_warm = _columns_and_warmup(summaries, features)
    return FeaturesInfo(
        path=str(out_dir), files=files, feature_columns=columns, warmup_bars=n_warm,
        label=asdict(label), features=asdict(features), freq=freq, rows=sum(f["rows"] for f in files),
        created_at=dt.datetime.now(KST).isoformat(timespec="seconds"),
    )  # fmt: skip


def _columns_and_warmup(summaries: list[dict], features: FeaturesConfig) -> tuple[list[str], int]:
    """The feature columns and warm-up bars the tasks reported (all tasks computed the same config),
    computed here only when no task reported them."""
    reported = {(tuple(s["columns"]), int(s["warmup_bars"])) for s in summaries if "columns" in s}
    if len(reported) > 1:
        raise DataError("the feature tasks disagree on the feature columns",
                        "rebuild the features with one code version on every node")
    if reported:
        columns, n_warm = reported.pop()
        return list(columns), n_warm
    return feature_names(features), warmup_bars(features)


def _manifest_json(info: FeaturesInfo) -> dict[str, Any]:
    data = asdict(info)
    data.pop("path")
    return {"format": FORMAT_VERSION, **data}


def run(cfg: Any) -> FeaturesInfo:
    """Stage entry for the composed config: ``store.root``, ``data.freq``, ``data.symbols``, ``features``, ``label``."""
    symbols = [str(s) for s in (cfg.data.symbols or [])] or None
    features = typed(FeaturesConfig, cfg.features)
    return build_features(str(cfg.store.root), features, cfg.label, freq=str(cfg.data.freq), symbols=symbols)
