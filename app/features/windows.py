"""Training windows: (seq_len, F) float32 arrays per sample, built lazily per features file.

``make_window_datasets`` resolves the split, fits the scaler on the training period and returns a
:class:`WindowData` whose ``train`` / ``val`` / ``test`` are Ray Datasets. Each dataset is a list
of features files; a ``map_batches`` task reads one file (whole symbols), scales it once and
yields blocks of ``block_windows`` windows, so no more than a few blocks of windows exist at a
time. ``windows_numpy`` / ``iter_windows`` run the very same per-file function without Ray.

A window ending at row ``i`` is emitted when it is a label-free window of
:mod:`app.features.window_rows` (``seq_len`` rows of one symbol, every model feature finite; warm-up
and other NaN rows are skipped, never filled), its target is defined, and row ``i`` belongs to the
period (see :mod:`app.features.splits`).
Rows carry ``x`` (seq_len x F float32 tensor), ``y`` (float32), ``symbol``, ``ts``, ``label_ts``.
"""
from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.features.allocator import keep_freed_memory
from app.features.feature_config import FeaturesConfig, LabelConfig, SplitConfig, WindowsConfig
from app.typed import typed
from app.features.features import FeaturesInfo, read_features, read_manifest
from app.features.labels import label_reach
from app.features.panel import Layout
from app.features.scalers import FeatureScaler, partial_stats, sample_stride
from app.features.splits import Period, Split, embargo_of, resolve_split, walk_forward
from app.features.window_rows import feature_ends, gather
from app.errors import ConfigError
from app.run_folder import SCALER, SPLIT, RunFolder

log = logging.getLogger(__name__)

TARGETS = {"label": "label_ts", "label_rank": "label_rank_ts"}
TORCH_COLUMNS = ["x", "y"]


def select_features(columns: list[str], patterns: list[str]) -> list[str]:
    """Feature columns matching any glob in ``patterns``, in dataset order."""
    chosen = [c for c in columns if any(fnmatch.fnmatchcase(c, p) for p in patterns)]
    if not chosen:
        raise ConfigError(f"features.model_columns {list(patterns)} match no feature column", "use globs like a158_*")
    return chosen


def read_calendar(info: FeaturesInfo) -> np.ndarray:
    """Sorted unique ts (epoch seconds) over every symbol of the dataset."""
    parts = [_seconds(read_features(p, ["ts"])["ts"]).astype(np.int64) for p in info.file_paths]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


@dataclass(frozen=True)
class FileFrame:
    """One features file as arrays: sample keys, target and the (n, F) feature matrix."""

    symbol: np.ndarray
    ts: np.ndarray  # epoch seconds
    pos: np.ndarray  # bar index within its symbol
    y: np.ndarray  # float64, NaN = undefined
    target_ts: np.ndarray  # float64 epoch seconds, NaN = undefined
    label_ts: np.ndarray
    x: np.ndarray  # float64 (n, F)

    @classmethod
    def read(cls, path: str, names: list[str], target: str) -> FileFrame:
        cols = ["symbol", "ts", "label_ts", target, TARGETS[target], *names]
        t = read_features(path, list(dict.fromkeys(cols)))
        symbol = t["symbol"].to_numpy(zero_copy_only=False)
        layout = Layout.of(symbol)
        x = np.empty((t.num_rows, len(names)), np.float64)
        for j, name in enumerate(names):
            x[:, j] = t[name].to_numpy(zero_copy_only=False)
        target_ts, label_ts = _seconds(t[TARGETS[target]]), _seconds(t["label_ts"])
        return cls(symbol, _seconds(t["ts"]), layout.pos, _floats(t[target]), target_ts, label_ts, x)


def _seconds(col: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _floats(col: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


@dataclass(frozen=True)
class WindowSpec:
    """Everything a window task needs (small and picklable)."""

    names: list[str]
    scaler: FeatureScaler
    seq_len: int
    target: str
    period: Period
    block_windows: int
    shuffle_seed: int | None = None


def window_ends(frame: FileFrame, xs: np.ndarray, spec: WindowSpec) -> np.ndarray:
    """Rows that end a valid window of ``spec.period``, in (symbol, ts) order.

    The label-free windows of :func:`app.features.window_rows.feature_ends`, kept where the target is
    defined and the sample belongs to the period.
    """
    ok = feature_ends(frame.pos, xs, spec.seq_len)
    ok &= np.isfinite(frame.y) & spec.period.members(frame.ts, frame.target_ts)
    return np.flatnonzero(ok)


def file_windows(path: str, spec: WindowSpec) -> Iterator[dict[str, np.ndarray]]:
    """The windows of one features file, in blocks of ``spec.block_windows``."""
    frame = FileFrame.read(path, spec.names, spec.target)
    xs = spec.scaler.transform(frame.x)
    ends = window_ends(frame, xs, spec)
    if spec.shuffle_seed is not None:
        ends = np.random.default_rng([spec.shuffle_seed, len(frame.ts), len(ends)]).permutation(ends)
    for i in range(0, len(ends), spec.block_windows):
        block = ends[i : i + spec.block_windows]
        yield {
            "x": gather(xs, block, spec.seq_len),
            "y": frame.y[block].astype(np.float32),
            "symbol": frame.symbol[block].astype(object),
            "ts": frame.ts[block].astype(np.int64).astype("datetime64[s]"),
            "label_ts": frame.label_ts[block].astype(np.int64).astype("datetime64[s]"),
        }


def _to_arrow(block: dict[str, np.ndarray]) -> pa.Table:
    from ray.data.extensions import ArrowTensorArray

    ts_type = pa.timestamp("s", tz="Asia/Seoul")
    return pa.table({
        "x": ArrowTensorArray.from_numpy(np.ascontiguousarray(block["x"])),
        "y": pa.array(block["y"]),
        "symbol": pa.array(block["symbol"], pa.string()),
        "ts": pa.array(block["ts"].astype(np.int64)).cast(ts_type),
        "label_ts": pa.array(block["label_ts"].astype(np.int64)).cast(ts_type),
    })  # fmt: skip


def _window_batch(batch: dict[str, np.ndarray], *, files: list[str], spec: WindowSpec) -> Iterator[pa.Table]:
    keep_freed_memory()
    for i in batch["file"]:
        for block in file_windows(files[int(i)], spec):
            yield _to_arrow(block)


def _fit_batch(batch: dict[str, np.ndarray], **kw: Any) -> dict[str, np.ndarray]:
    keep_freed_memory()
    parts = [_file_partial(kw["files"][int(i)], **{k: v for k, v in kw.items() if k != "files"}) for i in batch["file"]]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _file_partial(path: str, names: list[str], train: Period, method: str, stride: int) -> dict[str, np.ndarray]:
    frame = FileFrame.read(path, names, "label")
    rows = (frame.ts >= train.start) & (frame.ts <= train.end)
    return partial_stats(frame.x[rows], frame.pos[rows], method, stride)


def fit_scaler(info: FeaturesInfo, names: list[str], split: Split, cfg: WindowsConfig, calendar: np.ndarray,
               use_ray: bool | None = None) -> FeatureScaler:  # fmt: skip
    """Fit on rows whose ts lies in the training period, one partial per file (in Ray when running)."""
    train = split.train
    fit_period = {"start": train.to_dict()["start"], "end": train.to_dict()["end"]}
    if cfg.scaler == "none":
        return FeatureScaler.fit([], names, "none", cfg.clip, fit_period)
    train_bars = int(((calendar >= train.start) & (calendar <= train.end)).sum())
    kw = dict(names=names, train=train, method=cfg.scaler,
              stride=sample_stride(len(info.symbols), train_bars, cfg.max_fit_rows))  # fmt: skip
    if use_ray is None:
        import ray

        use_ray = ray.is_initialized()
    if use_ray:
        ds = _file_dataset(info.file_paths).map_batches(
            _fit_batch, batch_size=1, batch_format="numpy", fn_kwargs={"files": info.file_paths, **kw}
        )
        parts = list(ds.iter_batches(batch_size=None, batch_format="numpy"))
    else:
        parts = [_file_partial(p, **kw) for p in info.file_paths]
    return FeatureScaler.fit(parts, names, cfg.scaler, cfg.clip, fit_period)


def _file_dataset(files: list[str], order: list[int] | None = None):
    import ray.data

    order = list(range(len(files))) if order is None else order
    return ray.data.from_items([{"file": i} for i in order], override_num_blocks=max(1, len(order)))


@dataclass
class WindowData:
    """The windows of one split: Ray Datasets per part plus what the model and the run need."""

    features_path: str
    files: list[str]
    feature_names: list[str]
    scaler: FeatureScaler
    split: Split
    seq_len: int
    target: str
    block_windows: int = 1024
    shuffle: bool = True
    seed: int = 0
    num_cpus: float = 0.5
    _datasets: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def spec(self, part: str) -> WindowSpec:
        seed = self.seed if (part == "train" and self.shuffle) else None
        return WindowSpec(self.feature_names, self.scaler, self.seq_len, self.target, self.split.period(part),
                          self.block_windows, seed)  # fmt: skip

    def dataset(self, part: str):
        """The lazy Ray Dataset of ``part`` windows (built once, executed on every iteration)."""
        if part not in self._datasets:
            order = list(range(len(self.files)))
            if part == "train" and self.shuffle:
                order = [int(i) for i in np.random.default_rng(self.seed).permutation(len(self.files))]
            self._datasets[part] = _file_dataset(self.files, order).map_batches(
                _window_batch, batch_size=1, batch_format="numpy", num_cpus=self.num_cpus,
                fn_kwargs={"files": self.files, "spec": self.spec(part)},
            )  # fmt: skip
        return self._datasets[part]

    @property
    def train(self):
        return self.dataset("train")

    @property
    def val(self):
        return self.dataset("val")

    @property
    def test(self):
        return self.dataset("test")

    def save(self, run_dir: str | Path) -> None:
        """``scaler.json`` and ``split.json`` (with the feature names and window settings) into the run folder."""
        folder = RunFolder(run_dir)
        folder.write_json(SCALER, self.scaler.to_dict())
        meta = {**self.split.to_dict(), "feature_names": self.feature_names, "seq_len": self.seq_len,
                "target": self.target, "features_path": self.features_path}  # fmt: skip
        folder.write_json(SPLIT, meta)


def _groups(cfg: Any) -> tuple[FeaturesConfig, SplitConfig, WindowsConfig]:
    return (typed(FeaturesConfig, getattr(cfg, "features", None)), typed(SplitConfig, getattr(cfg, "split", None)),
            typed(WindowsConfig, getattr(cfg, "windows", None)))  # fmt: skip


def _check_windows(wcfg: WindowsConfig, info: FeaturesInfo) -> None:
    if wcfg.target not in TARGETS:
        raise ConfigError(f"windows.target={wcfg.target!r} is unknown", "use windows.target=label or label_rank")
    if wcfg.target == "label_rank" and not info.label.get("rank"):
        raise ConfigError(
            "windows.target=label_rank but the features have no rank label", "rebuild with label.rank=true"
        )
    if wcfg.seq_len < 1 or wcfg.block_windows < 1:
        raise ConfigError("windows.seq_len and windows.block_windows must be positive", "e.g. windows.seq_len=20")


def make_window_datasets(features_path: str, cfg: Any, *, split: Split | None = None,
                         scaler: FeatureScaler | None = None) -> WindowData:  # fmt: skip
    """Windows of a features dataset; ``cfg`` has ``features``, ``split`` and ``windows`` (e.g. the run config).

    ``split`` overrides the configured dates (walk-forward folds); ``scaler`` reuses a fitted one.
    """
    fcfg, scfg, wcfg = _groups(cfg)
    info = read_manifest(features_path)
    _check_windows(wcfg, info)
    names = select_features(info.feature_columns, list(fcfg.model_columns))
    calendar = read_calendar(info)
    if split is None:
        split = resolve_split(calendar, scfg, label_reach(typed(LabelConfig, info.label)))
    if scaler is None:
        scaler = fit_scaler(info, names, split, wcfg, calendar)
    elif scaler.feature_names != names:
        raise ConfigError(
            "the given scaler was fit on other feature columns", "refit it or match features.model_columns"
        )
    log.info("windows: %d features, seq_len %d, split %s", len(names), wcfg.seq_len, split.to_dict())
    return WindowData(info.path, info.file_paths, names, scaler, split, int(wcfg.seq_len), wcfg.target,
                      int(wcfg.block_windows), bool(wcfg.shuffle), int(wcfg.seed),
                      float(wcfg.num_cpus_per_task))  # fmt: skip


def walk_forward_splits(features_path: str, cfg: Any) -> list[Split]:
    """The walk-forward folds of a features dataset (pass each to ``make_window_datasets(split=...)``)."""
    _, scfg, _ = _groups(cfg)
    info = read_manifest(features_path)
    embargo = embargo_of(scfg, label_reach(typed(LabelConfig, info.label)))
    return walk_forward(read_calendar(info), scfg.walk_forward, embargo)


def iter_windows(data: WindowData, part: str) -> Iterator[dict[str, np.ndarray]]:
    """The windows of ``part`` without Ray, block by block, in the dataset's order."""
    spec = data.spec(part)
    order = range(len(data.files))
    if part == "train" and data.shuffle:
        order = np.random.default_rng(data.seed).permutation(len(data.files))
    for i in order:
        yield from file_windows(data.files[int(i)], spec)


def windows_numpy(data: WindowData, part: str) -> dict[str, np.ndarray]:
    """Every window of ``part`` in memory (small data and tests only)."""
    blocks = list(iter_windows(data, part))
    if not blocks:
        L, F = data.seq_len, data.n_features
        return {"x": np.zeros((0, L, F), np.float32), "y": np.zeros(0, np.float32),
                "symbol": np.zeros(0, object), "ts": np.zeros(0, "datetime64[s]"),
                "label_ts": np.zeros(0, "datetime64[s]")}  # fmt: skip
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
