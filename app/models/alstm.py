"""Attention LSTM (ALSTM, Qin et al. 2017; qlib baseline: hidden 64, 2 layers, dropout 0)."""
from __future__ import annotations

import torch
from torch import nn

from app.models.common import AttentionPool, RegressionHead, SequenceModel, make_rnn


class ALSTMModel(SequenceModel):
    """An RNN whose states are pooled by attention; the head sees [last state, attended state]."""

    def __init__(
        self,
        n_features: int | None,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        rnn_type: str = "lstm",
    ) -> None:
        super().__init__(n_features)
        self.embed = nn.Sequential(nn.Linear(self.n_features, hidden_size), nn.Tanh())
        self.rnn = make_rnn(rnn_type, hidden_size, hidden_size, num_layers, dropout)
        self.attention = AttentionPool(hidden_size, dropout)
        self.head = RegressionHead(2 * hidden_size, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        h, _ = self.rnn(self.embed(x))
        return self.head(torch.cat([h[:, -1], self.attention(h)], dim=-1))
