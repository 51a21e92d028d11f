"""Writing and reading one training checkpoint folder.

Layout (shared with :mod:`app.models.factory`, which only needs the first two files):
``model.pt`` (state dict), ``meta.json`` (model node, n_features, the caller's feature spec and
scaler, epoch, metrics, history), ``train_state.pt`` (optimizer, scheduler, GradScaler, early
stopping, RNG states of every worker).
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from app.models.factory import META_FILE, MODEL_FILE
from app.train.loop import EarlyStopping

TRAIN_STATE_FILE = "train_state.pt"
FORMAT_VERSION = 1


def json_safe(value: Any) -> Any:
    """Replace NaN/inf by None and numpy values by Python ones, so the JSON is standard."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def capture_rng() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainingState:
    """What a worker needs to continue a run exactly where the checkpoint left it."""

    epoch: int
    model: dict[str, torch.Tensor]
    optimization: dict[str, Any]
    early: dict[str, Any]
    rng: list[dict[str, Any]] = field(default_factory=list)  # one per worker rank
    meta: dict[str, Any] = field(default_factory=dict)


def write_checkpoint(
    folder: Path,
    *,
    model: nn.Module,
    optimization: dict[str, Any],
    early: EarlyStopping,
    epoch: int,
    rng: list[dict[str, Any]],
    meta: dict[str, Any],
) -> None:
    """``model`` must be the bare module (not the DDP wrapper) so its keys have no ``module.``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / MODEL_FILE)
    torch.save(
        {"epoch": epoch, "optimization": optimization, "early": asdict(early), "rng": rng, "version": FORMAT_VERSION},
        folder / TRAIN_STATE_FILE,
    )
    (folder / META_FILE).write_text(json.dumps(json_safe({**meta, "epoch": epoch}), indent=1))


def read_checkpoint(folder: Path) -> TrainingState:
    state = torch.load(folder / TRAIN_STATE_FILE, map_location="cpu", weights_only=False)  # our own file
    return TrainingState(
        epoch=int(state["epoch"]),
        model=torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True),
        optimization=state["optimization"],
        early=state["early"],
        rng=state.get("rng", []),
        meta=json.loads((folder / META_FILE).read_text()),
    )
