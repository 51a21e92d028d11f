"""Batch inference from a checkpoint folder: a Ray Dataset (actor pool) or in-memory windows."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import ray.data
import torch

from app.contracts import KST_NAME
from app.errors import DataError
from app.models.factory import load_model, read_meta
from app.train.device import select_device

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ("symbol", "ts", "prediction", "label")


def _forward(model: torch.nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Scores on the model's device (a GPU when it was moved to one), returned on the host."""
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32))
            if device.type == "cuda":
                chunk = chunk.pin_memory().to(device, non_blocking=True)
            out.append(model(chunk).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty(0, np.float32)


def _tensor_column(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return np.asarray(arr.to_numpy(zero_copy_only=False))


class Predictor:
    """Ray Data actor: loads the model once, maps a pyarrow batch to the prediction columns."""

    def __init__(self, checkpoint_dir: str, batch_size: int = 1024, threads: int = 1, use_gpu: bool = False) -> None:
        torch.set_num_threads(max(1, threads))
        self.model, _ = load_model(checkpoint_dir)
        self.model.to(select_device(use_gpu))  # an actor given a GPU share sees it as cuda:0
        self.batch_size = batch_size

    def __call__(self, table: pa.Table) -> pa.Table:
        pred = _forward(self.model, _tensor_column(table, "x"), self.batch_size)
        n = table.num_rows
        cols = {
            "symbol": table.column("symbol") if "symbol" in table.column_names else pa.nulls(n, pa.string()),
            "ts": table.column("ts") if "ts" in table.column_names else pa.nulls(n, pa.timestamp("s")),
            "prediction": pa.array(pred, pa.float32()),
            "label": table.column("y").cast(pa.float32()) if "y" in table.column_names else pa.nulls(n, pa.float32()),
        }
        return pa.table(cols)


def as_kst(ts: pd.Series) -> pd.Series:
    """Timestamps as tz-aware KST; naive ones are UTC instants (Ray Data drops the zone that way)."""
    ts = pd.to_datetime(ts)
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    return ts.dt.tz_convert(KST_NAME).dt.as_unit("s")  # the Bars contract's unit


def _frame(symbol: Any, ts: Any, pred: np.ndarray, label: Any) -> pd.DataFrame:
    n = len(pred)
    df = pd.DataFrame(
        {
            "symbol": pd.Series(symbol if symbol is not None else [None] * n, dtype="string"),
            "ts": pd.Series(ts if ts is not None else [pd.NaT] * n),
            "prediction": np.asarray(pred, np.float32),
            "label": np.asarray(label if label is not None else np.full(n, np.nan), np.float32),
        }
    )
    df["ts"] = as_kst(df["ts"])
    return df


#: What a one-thread predictor actor reserves, and what a window task feeding it asks for.
HALF_CPU = 0.5


def actor_cpus(wanted: float, actors: int, cluster_cpus: float) -> float:
    """A predictor actor's CPU reservation, which leaves the window tasks feeding it room to run.

    An actor of 1 CPU on a node of 1 CPU (a laptop, or the node left after a loss) would hold the CPU
    those tasks wait for, and the prediction would never end. So an actor that runs one torch thread
    (``wanted`` < 2) reserves half a CPU, beside a half-CPU window task on any node; that cap does not
    rely on ``cluster_cpus``, which right after a node loss may still count the lost node (Ray declares
    it dead seconds after its workers die). On top, no actor takes more than the cluster's share."""
    capped = min(wanted, HALF_CPU) if wanted < 2 else wanted
    return capped if cluster_cpus <= 0 else min(capped, cluster_cpus / (actors + 1))


def predict(
    checkpoint_dir: str | Path,
    data: "ray.data.Dataset | Mapping[str, np.ndarray]",
    *,
    batch_size: int = 1024,
    num_actors: int = 1,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
) -> pd.DataFrame:
    """Columns ``symbol, ts, prediction, label`` (float32 predictions, ts in KST), one row per window.

    ``data`` is a Ray Dataset of windows (``x``, ``y``, ``symbol``, ``ts``) or a mapping of numpy
    arrays with at least ``x`` (``(n, seq_len, F)``); the other columns are optional.
    ``gpus_per_actor`` > 0 scores a dataset on GPUs (that share of one per actor); in-memory
    windows are scored on this process's GPU when it has one.
    """
    checkpoint_dir = Path(checkpoint_dir).resolve()
    read_meta(checkpoint_dir)  # a clear error before any actor starts
    if isinstance(data, ray.data.Dataset):
        cpus_per_actor = actor_cpus(cpus_per_actor, num_actors, float(ray.cluster_resources().get("CPU", 0)))
        if "x" not in data.schema().names:
            raise DataError("the dataset to predict has no x column", "pass windows from app.features.windows")
        out = data.map_batches(
            Predictor,
            fn_constructor_kwargs={
                "checkpoint_dir": str(checkpoint_dir),
                "batch_size": batch_size,
                "threads": max(1, int(cpus_per_actor)),
                "use_gpu": gpus_per_actor > 0,
            },
            batch_format="pyarrow",
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=num_actors),
            num_cpus=cpus_per_actor,
            **({"num_gpus": gpus_per_actor} if gpus_per_actor > 0 else {}),
        ).to_pandas()
        if out.empty:
            return _frame([], [], np.empty(0, np.float32), [])
        return _frame(
            out["symbol"].astype("string"),
            out["ts"],
            out["prediction"].to_numpy(np.float32),
            out["label"].to_numpy(np.float32),
        )
    if isinstance(data, Mapping) and "x" in data:
        x = np.asarray(data["x"])
        if x.ndim != 3:
            raise DataError(f"x has shape {x.shape}, not (n, seq_len, n_features)", "stack windows into a 3-d array")
        model, _ = load_model(checkpoint_dir)
        pred = _forward(model.to(select_device(torch.cuda.is_available())), x, batch_size)
        return _frame(data.get("symbol"), data.get("ts"), pred, data.get("y"))
    raise DataError(
        f"cannot predict from {type(data).__name__}", "pass a Ray Dataset of windows or a dict with an x array"
    )
