"""Pieces every architecture shares: input checks, pooling over time, the regression head.

Kept here so the model files only say what differs between architectures.
"""
from __future__ import annotations

import torch
from torch import nn

from app.errors import ConfigError, DataError

POOLINGS = ("last", "mean")


class SequenceModel(nn.Module):
    """Base of every model: remembers ``n_features`` and checks the input shape once per call."""

    def __init__(self, n_features: int | None) -> None:
        super().__init__()
        if n_features is None or isinstance(n_features, str) or int(n_features) < 1:
            raise ConfigError(
                f"model n_features={n_features!r} is not a positive integer",
                "build models with app.models.factory.build_model(cfg, n_features) so the data sets it",
            )
        self.n_features = int(n_features)

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.n_features:
            raise DataError(
                f"{type(self).__name__} expects (batch, seq_len, {self.n_features}) input, got {tuple(x.shape)}",
                "feed windows built with the same feature list the model was trained on",
            )


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"model {name}={value!r} is unknown", f"use one of {', '.join(allowed)}")
    return value


def check_positive(name: str, value: int) -> int:
    if int(value) < 1:
        raise ConfigError(f"model {name}={value!r} must be >= 1", f"set model.{name} to a positive integer")
    return int(value)


def pool_time(h: torch.Tensor, mode: str) -> torch.Tensor:
    """``(batch, time, dim)`` -> ``(batch, dim)``: the last step or the mean over steps."""
    return h[:, -1] if mode == "last" else h.mean(dim=1)


class RegressionHead(nn.Module):
    """Dropout and a linear map to one value per sample (``(batch, dim)`` -> ``(batch,)``)."""

    def __init__(self, in_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(in_dim, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(h)).squeeze(-1)


class AttentionPool(nn.Module):
    """Softmax attention over time steps (ALSTM, Qin et al. 2017; the qlib baseline's scorer)."""

    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = max(1, dim // 2)
        self.score = nn.Sequential(
            nn.Linear(dim, hidden), nn.Dropout(dropout), nn.Tanh(), nn.Linear(hidden, 1, bias=False)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(h).float(), dim=1).to(h.dtype)  # (batch, time, 1)
        return (weights * h).sum(dim=1)


RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU}


def make_rnn(rnn_type: str, n_features: int, hidden_size: int, num_layers: int, dropout: float) -> nn.RNNBase:
    """A batch-first LSTM or GRU; dropout applies between stacked layers only (PyTorch's rule)."""
    check_choice("rnn_type", rnn_type, tuple(RNN_TYPES))
    return RNN_TYPES[rnn_type](
        input_size=n_features,
        hidden_size=check_positive("hidden_size", hidden_size),
        num_layers=check_positive("num_layers", num_layers),
        dropout=dropout if num_layers > 1 else 0.0,
        batch_first=True,
    )


class RecurrentModel(SequenceModel):
    """A stacked RNN pooled over time into the regression head (the LSTM and GRU baselines)."""

    rnn_type = "lstm"

    def __init__(
        self,
        n_features: int | None,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        pooling: str = "last",
    ) -> None:
        super().__init__(n_features)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        self.rnn = make_rnn(self.rnn_type, self.n_features, hidden_size, num_layers, dropout)
        self.head = RegressionHead(hidden_size, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        h, _ = self.rnn(x)
        return self.head(pool_time(h, self.pooling))
