"""Hyperparameter sweeps: Ray Tune over the training function, OptunaSearch (TPE) + ASHA.

Entry points: :func:`app.tune.stage.run` (the ``tune`` stage: sweep, results, best config,
the best checkpoint re-evaluated on the test split) and :func:`app.tune.stage.plan` (every check
that needs only the config). Settings: :class:`app.tune.config.TuneConfig`; search spaces:
``conf/tune/<model>.yaml`` parsed by :func:`app.tune.space.parse_space`. See docs/tuning.md.
"""
