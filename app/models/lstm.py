"""LSTM baseline (qlib's LSTM on Alpha158: hidden 64, 2 layers, dropout 0, lr 1e-3)."""
from __future__ import annotations

from app.models.common import RecurrentModel


class LSTMModel(RecurrentModel):
    """Stacked LSTM; the prediction reads the last hidden state (or the mean with ``pooling=mean``)."""

    rnn_type = "lstm"
