"""Build a model from its Hydra node, and rebuild a trained one from a checkpoint folder.

A checkpoint folder holds ``model.pt`` (the state dict, loadable with ``weights_only=True``) and
``meta.json`` (the model node, ``n_features``, the caller's feature spec/scaler and the metrics);
training state (optimizer, scheduler, RNG) lives beside them but is not needed to predict.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.errors import ConfigError, DataError

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
META_FILE = "meta.json"


def plain_model_cfg(model_cfg: Any) -> dict:
    """The model node as a plain JSON-able dict; one without ``_target_`` is a config error."""
    if not isinstance(model_cfg, Mapping) or "_target_" not in model_cfg:
        raise ConfigError(
            "the model config has no _target_",
            "select a model group, e.g. model=lstm (conf/model/lstm.yaml names app.models.lstm.LSTMModel)",
        )
    return {str(k): v for k, v in model_cfg.items()}


def build_model(model_cfg: Any, n_features: int) -> nn.Module:
    """Instantiate ``model_cfg['_target_']`` with ``n_features`` taken from the data."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    cfg = plain_model_cfg(model_cfg)
    cfg["n_features"] = int(n_features)
    try:
        model = instantiate(cfg)
    except InstantiationException as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        if isinstance(cause, ConfigError):
            raise cause from None
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ConfigError(
            f"cannot build model {cfg['_target_']}: {first_line}",
            "check the model group's keys against the model's constructor arguments",
        ) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model _target_ {cfg['_target_']} is not a torch module", "point _target_ at app.models.*")
    return model


def read_meta(checkpoint_dir: str | Path) -> dict:
    path = Path(checkpoint_dir) / META_FILE
    if not path.is_file():
        raise DataError(f"{path} does not exist", "pass a checkpoint folder written by training (checkpoints/best)")
    return json.loads(path.read_text())


def load_model(checkpoint_dir: str | Path) -> tuple[nn.Module, dict]:
    """The trained model in eval mode on CPU, and the checkpoint's metadata."""
    meta = read_meta(checkpoint_dir)
    model = build_model(meta["model_cfg"], meta["n_features"])
    state = torch.load(Path(checkpoint_dir) / MODEL_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model, meta
