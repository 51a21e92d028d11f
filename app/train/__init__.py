"""The one training loop for every model: Ray Train (DDP), AMP, accumulation, checkpoints, metrics.

Entry points: :func:`app.train.fit.fit` (train and write the run's outputs) and
:func:`app.train.predict.predict` (batch inference from a checkpoint).
"""
