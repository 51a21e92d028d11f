"""Everything ``fit`` checks and derives on the driver before Ray Train starts.

Bad input fails here in well under a second, not after Ray Train's start-up.
"""
from __future__ import annotations

import datetime as dt
import logging
import numbers
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import pyarrow.fs as pafs
import ray.data
from ray.data.dataset import MaterializedDataset

from app.errors import ConfigError, DataError
from app.storage import filesystem
from app.models.factory import build_model, plain_model_cfg
from app.run_folder import CHECKPOINTS, RUN_LOG
from app.train.config import TrainConfig
from app.train.driver_node import held_by_driver_node
from app.typed import typed
from app.train.device import ray_gpus, resolve_use_gpu

log = logging.getLogger(__name__)

RUN_PREFIX = "train-"
REQUIRED = {"train": ("x", "y"), "val": ("x", "y", "ts"), "test": ("x", "y")}


class FitData(NamedTuple):
    """The data contract of ``app.features.windows``; a plain 4-tuple works too."""

    train: ray.data.Dataset
    val: ray.data.Dataset
    n_features: int
    extra_meta: Mapping[str, Any] = {}  # feature names, scaler, label spec: saved in every checkpoint's meta.json
    test: ray.data.Dataset | None = None


def check_window_shape(name: str, ds: ray.data.Dataset, n_features: int) -> None:
    """Fixed-shape tensor columns carry ``(seq_len, F)`` in the schema: compare F before training."""
    schema = ds.schema()
    shape = getattr(schema.types[schema.names.index("x")], "shape", None)
    if shape is not None and len(shape) == 2 and shape[-1] != n_features:
        raise DataError(
            f"{name} windows have {shape[-1]} features but n_features={n_features}",
            "pass n_features=len(feature_names) of the same windows",
        )


def prepare_dataset(name: str, ds: Any, min_rows: int) -> tuple[ray.data.Dataset, int]:
    """Check the columns, execute a lazy dataset now (while every CPU is free) and count it.

    Training workers may hold all CPUs; a lazy transform left for them would then wait forever
    for a CPU (and would be re-run every epoch).
    """
    if not isinstance(ds, ray.data.Dataset):
        raise DataError(f"{name} data is a {type(ds).__name__}, not a Ray Dataset", "pass app.features.windows output")
    if not isinstance(ds, MaterializedDataset):  # first: a lazy dataset's schema() executes a block of it
        log.info("materializing the %s dataset before training", name)
        ds = ds.materialize()
    ds = held_by_driver_node(ds)
    missing = [c for c in REQUIRED[name] if c not in ds.schema().names]
    if missing:
        raise DataError(f"{name} dataset lacks column(s) {', '.join(missing)}", "build it with app.features.windows")
    rows = ds.count()
    if rows < min_rows:
        raise DataError(f"{name} dataset has {rows} rows, needs at least {min_rows}", "widen the date range or split")
    return ds, rows


def run_name(storage: str, resume: bool) -> str:
    """A fresh unique name, or with ``resume`` the newest run in the folder (Ray then restores it)."""
    if not resume:
        return f"{RUN_PREFIX}{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    fs, path = filesystem(storage)
    found = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    runs = sorted(i.base_name for i in found if i.type == pafs.FileType.Directory and i.base_name.startswith(RUN_PREFIX))
    if not runs:
        raise ConfigError(
            f"train.resume=true but {storage} holds no training run",
            "point the run folder at an earlier run or set train.resume=false",
        )
    return runs[-1]


def persistence_index(cfg: TrainConfig, data: FitData) -> int | None:
    if cfg.persistence_feature is None:
        return None
    names = list(data.extra_meta.get("feature_names", []))
    if cfg.persistence_feature not in names:
        raise ConfigError(
            f"train.persistence_feature={cfg.persistence_feature!r} is not a feature",
            "use a name from extra_meta['feature_names'] or null",
        )
    return names.index(cfg.persistence_feature)


@dataclass
class Plan:
    """Everything checked and derived on the driver before Ray Train starts."""

    cfg: TrainConfig
    model_cfg: dict
    data: FitData
    run_dir: Path
    name: str
    n_params: int
    n_train: int
    persistence: int | None
    storage: str  # Ray Train's storage_path: run_dir/checkpoints, or its place on a storage URI

    @property
    def log_path(self) -> Path:
        return self.run_dir / RUN_LOG


def make_plan(model_cfg: Mapping[str, Any], train_cfg: Any, data: Any, run_dir: str | Path,
              checkpoints: str | None = None) -> Plan:
    """Check the config and data, materialize the datasets and name the Ray Train run.

    ``checkpoints`` is where Ray Train keeps the run's checkpoints (default ``run_dir/checkpoints``;
    a storage URI when every node must reach them)."""
    cfg = resolve_use_gpu(typed(TrainConfig, train_cfg, "train"), ray_gpus())
    data = FitData(*data)
    model_cfg = plain_model_cfg(model_cfg)
    if not isinstance(data.n_features, numbers.Integral) or data.n_features < 1:
        raise DataError(f"n_features={data.n_features!r} is not a positive integer", "pass len(feature_names)")
    data = data._replace(n_features=int(data.n_features))
    n_params = sum(p.numel() for p in build_model(model_cfg, data.n_features).parameters())
    persistence = persistence_index(cfg, data)
    train_ds, n_train = prepare_dataset("train", data.train, cfg.num_workers)
    val_ds, _ = prepare_dataset("val", data.val, 2)
    test_ds = prepare_dataset("test", data.test, 1)[0] if data.test is not None else None
    data = data._replace(train=train_ds, val=val_ds, test=test_ds)
    for split in ("train", "val", "test"):
        if getattr(data, split) is not None:
            check_window_shape(split, getattr(data, split), data.n_features)
    run_dir = Path(run_dir).resolve()
    (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)  # checkpoints/best is always local
    storage = checkpoints or str(run_dir / CHECKPOINTS)
    name = run_name(storage, cfg.resume)
    return Plan(cfg, model_cfg, data, run_dir, name, n_params, n_train, persistence, storage)
