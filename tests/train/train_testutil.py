"""Synthetic windows with a planted linear signal (the shape app.features.windows produces), and a
model that crashes its worker on demand."""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
import torch.distributed as dist
from torch import nn

from app.models.lstm import LSTMModel

SEQ_LEN = 8
N_FEATURES = 4
WEIGHTS = np.array([0.8, -0.5, 0.3, 0.0], np.float32)
#: Dotted path Ray workers import the crashing model by (the repo root is on their sys.path).
FLAKY_TARGET = "tests.train.train_testutil.FlakyLSTM"


class LastStepLinear(nn.Module):
    """Deterministic (no dropout) and linear, so accumulated gradients can be compared exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(N_FEATURES, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x[:, -1]).squeeze(-1)


def train_steps(batches, accum: int, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The weights of a seeded :class:`LastStepLinear` after one epoch over ``batches``.

    AdamW without clipping or a schedule: a gradient scaled wrongly changes every later step.
    """
    from app.train.amp import resolve_amp
    from app.train.config import TrainConfig
    from app.train.loop import Optimization, make_loss, train_epoch

    torch.manual_seed(0)
    net = LastStepLinear()
    model = model(net) if model is not None else net
    cfg = TrainConfig(lr=1e-2, grad_accum_steps=accum, scheduler="none", clip_grad_norm=None)
    amp = resolve_amp("off", torch.device("cpu"))
    opt = Optimization(model, cfg, amp, total_steps=100)
    train_epoch(model, batches, opt, make_loss(cfg), amp, accum)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def ddp_accumulation_worker(rank: int, world: int, shards: list, micro: int, accum: int, out: str) -> None:
    """One DDP (gloo) process of the accumulation test: trains on its shard, saves its weights."""
    from app.train.batches import array_batches

    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        x, y = shards[rank]
        weights = train_steps(array_batches(x, y, micro), accum, model=nn.parallel.DistributedDataParallel)
        torch.save(weights, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def windows(
    n_dates: int, n_symbols: int, *, seed: int = 0, noise: float = 0.1, start: str = "2024-01-02"
) -> dict[str, np.ndarray]:
    """``y = WEIGHTS . x[-1] + noise``: a model that reads the last step can explain most of it."""
    rng = np.random.default_rng(seed)
    n = n_dates * n_symbols
    x = rng.standard_normal((n, SEQ_LEN, N_FEATURES)).astype(np.float32)
    y = (x[:, -1, :] @ WEIGHTS + noise * rng.standard_normal(n)).astype(np.float32)
    days = pd.bdate_range(start, periods=n_dates).tz_localize("Asia/Seoul") + pd.Timedelta(hours=15, minutes=30)
    ts = np.repeat(days.to_numpy(), n_symbols)
    symbols = np.tile([f"{i:06d}" for i in range(n_symbols)], n_dates)
    return {"x": x, "y": y, "ts": ts, "symbol": symbols}


def to_dataset(arrays: dict[str, np.ndarray]):
    """A Ray Dataset with the windows contract: x (tensor), y, symbol, ts (KST), label_ts."""
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    ts = pa.array(pd.DatetimeIndex(arrays["ts"]), pa.timestamp("s", tz="Asia/Seoul"))
    table = pa.table(
        {
            "x": ArrowTensorArray.from_numpy(arrays["x"]),
            "y": pa.array(arrays["y"], pa.float32()),
            "symbol": pa.array(arrays["symbol"], pa.string()),
            "ts": ts,
            "label_ts": ts,
        }
    )
    return ray.data.from_arrow(table)


class FlakyLSTM(LSTMModel):
    """An LSTM whose rank-0 process dies once per marker file: a worker crash on demand.

    On the ``crash_after_calls``-th training forward of a process, rank 0 claims the first marker
    that does not exist yet (atomically) and exits hard, as a killed worker would. It waits
    ``crash_delay_s`` first so Ray Train's controller has collected the previous epoch's report.
    """

    def __init__(
        self, n_features, crash_after_calls: int = 0, markers: tuple = (), crash_delay_s: float = 2.0, **kwargs
    ) -> None:
        super().__init__(n_features, **kwargs)
        self.crash_after_calls = crash_after_calls
        self.crash_delay_s = crash_delay_s
        self.markers = list(markers)
        self.calls = 0

    def forward(self, x):
        if self.training and self.crash_after_calls:
            self.calls += 1
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
            if self.calls == self.crash_after_calls and rank == 0:
                for marker in self.markers:
                    try:
                        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                    except FileExistsError:
                        continue
                    os.close(fd)
                    time.sleep(self.crash_delay_s)
                    os._exit(1)
        return super().forward(x)
