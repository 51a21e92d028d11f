"""Turning bars into model inputs: features, labels, time splits, scalers and windows."""
