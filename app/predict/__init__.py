"""The model in use: a trained run's self-contained bundle (``model/``) and ``stage=predict``."""
