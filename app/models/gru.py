"""GRU baseline (qlib's GRU on Alpha158: hidden 64, 2 layers, dropout 0, lr 1e-3)."""
from __future__ import annotations

from app.models.common import RecurrentModel


class GRUModel(RecurrentModel):
    """Stacked GRU; the prediction reads the last hidden state (or the mean with ``pooling=mean``)."""

    rnn_type = "gru"
