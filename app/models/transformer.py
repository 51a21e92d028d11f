"""Transformer encoder over the window (qlib baseline: d_model 64, 2 heads, 2 layers)."""
from __future__ import annotations

import math

import torch
from torch import nn

from app.errors import ConfigError, DataError
from app.models.common import (
    POOLINGS,
    RegressionHead,
    SequenceModel,
    check_choice,
    check_positive,
    pool_time,
)

POSITIONS = ("sinusoidal", "learned")


def sinusoidal_table(max_len: int, d_model: int) -> torch.Tensor:
    """The fixed sine/cosine position table of Vaswani et al. (2017), ``(max_len, d_model)``."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: d_model // 2])
    return table


class TransformerModel(SequenceModel):
    """Project features to ``d_model``, add positions, encode, pool (last token or mean), regress.

    ``causal=True`` lets each step attend only to itself and earlier steps; with ``pooling=last``
    the output then depends on the whole window only through the last token.
    """

    def __init__(
        self,
        n_features: int | None,
        d_model: int = 64,
        nhead: int = 2,
        num_layers: int = 2,
        dim_feedforward: int = 256,
        dropout: float = 0.1,
        positional: str = "sinusoidal",
        causal: bool = False,
        pooling: str = "last",
        max_len: int = 512,
    ) -> None:
        super().__init__(n_features)
        check_positive("d_model", d_model)
        if d_model % check_positive("nhead", nhead):
            raise ConfigError(
                f"model d_model={d_model} is not divisible by nhead={nhead}", "pick nhead dividing d_model"
            )
        self.positional = check_choice("positional", positional, POSITIONS)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        self.causal = bool(causal)
        self.max_len = check_positive("max_len", max_len)
        self.project = nn.Linear(self.n_features, d_model)
        if positional == "learned":
            self.pos = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            self.register_buffer("pos", sinusoidal_table(max_len, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, check_positive("num_layers", num_layers), norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head = RegressionHead(d_model, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        steps = x.shape[1]
        if steps > self.max_len:
            raise DataError(
                f"window of {steps} steps is longer than the model's max_len={self.max_len}",
                "raise model.max_len or shorten the window",
            )
        h = self.project(x) + self.pos[:steps]
        mask = None
        if self.causal:
            mask = torch.triu(torch.ones(steps, steps, dtype=torch.bool, device=x.device), diagonal=1)
        h = self.encoder(h, mask=mask, is_causal=self.causal)
        return self.head(pool_time(h, self.pooling))
