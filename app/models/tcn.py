"""Temporal convolutional network (Bai, Kolter & Koltun 2018): dilated causal convolutions.

Defaults: 64 channels (like the recurrent baselines' hidden size), kernel 3 and 4 levels with
dilations 1, 2, 4, 8, a receptive field of 61 steps, enough for a 60-bar window.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from app.models.common import RegressionHead, SequenceModel, check_positive


class CausalConv1d(nn.Conv1d):
    """A Conv1d padded on the left only, so step t never sees steps after t."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int) -> None:
        super().__init__(in_ch, out_ch, kernel_size, dilation=dilation)
        self.left_pad = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))


class TemporalBlock(nn.Module):
    """Two causal convolutions with ReLU and dropout, plus a residual (1x1 when widths differ)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            CausalConv1d(in_ch, out_ch, kernel_size, dilation),
            nn.ReLU(),
            nn.Dropout(dropout),
            CausalConv1d(out_ch, out_ch, kernel_size, dilation),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.skip = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class TCNModel(SequenceModel):
    """Residual temporal blocks with dilation ``2**level``; the head reads the last time step."""

    def __init__(
        self,
        n_features: int | None,
        channels: int = 64,
        num_levels: int = 4,
        kernel_size: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(n_features)
        check_positive("channels", channels)
        check_positive("kernel_size", kernel_size)
        widths = [self.n_features] + [channels] * check_positive("num_levels", num_levels)
        self.blocks = nn.Sequential(
            *(TemporalBlock(widths[i], widths[i + 1], kernel_size, 2**i, dropout) for i in range(num_levels))
        )
        self.receptive_field = 1 + 2 * (kernel_size - 1) * (2**num_levels - 1)
        self.head = RegressionHead(channels, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        h = self.blocks(x.transpose(1, 2))  # (batch, channels, time)
        return self.head(h[:, :, -1])
