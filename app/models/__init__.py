"""Sequence models: every architecture maps ``(batch, seq_len, n_features)`` to ``(batch,)``.

Models are built from a Hydra node with ``_target_`` by :func:`app.models.factory.build_model`,
which supplies ``n_features`` from the data; :func:`app.models.factory.load_model` rebuilds one
from a checkpoint folder (used by prediction and the realtime path).
"""
