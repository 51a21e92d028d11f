"""Zero, persistence and ridge baselines on a planted linear signal."""
from __future__ import annotations

import numpy as np
import pytest

from app.errors import ConfigError
from app.evaluate.baselines import fit_ridge, last_step, run_baselines
from train_testutil import WEIGHTS, windows


def test_ridge_beats_the_zero_forecast_on_a_planted_linear_signal():
    train, val = windows(50, 20, seed=1), windows(20, 20, seed=2)
    out = run_baselines(train, val, alpha=1.0, persistence_index=0)
    assert set(out) == {"zero", "ridge", "persistence"}
    assert out["ridge"]["mse"] < 0.05 * out["zero"]["mse"]
    assert out["ridge"]["ic"] > 0.95 and out["ridge"]["dir_acc"] > 0.9
    assert out["zero"]["mse"] == pytest.approx(np.mean(val["y"].astype(np.float64) ** 2))
    assert np.isnan(out["zero"]["ic"])  # a constant forecast has no cross-section
    # feature 0 carries weight 0.8 of the signal: persistence of it is informative but worse than ridge
    assert out["ridge"]["mse"] < out["persistence"]["mse"] and out["persistence"]["ic"] > 0.5


def test_ridge_recovers_the_weights_and_an_unpenalised_intercept():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 4))
    y = x @ WEIGHTS + 3.0
    model = fit_ridge(x, y, alpha=1e-6)
    np.testing.assert_allclose(model.coef, WEIGHTS, atol=1e-5)
    assert model.intercept == pytest.approx(3.0, abs=1e-5)
    shrunk = fit_ridge(x, y, alpha=1e5)
    assert np.abs(shrunk.coef).sum() < 0.1 * np.abs(WEIGHTS).sum() and shrunk.intercept == pytest.approx(3.0, abs=0.1)


def test_last_step_keeps_only_the_final_row_of_each_window():
    w = windows(3, 2, seed=0)
    out = last_step(w)
    np.testing.assert_array_equal(out["x_last"], w["x"][:, -1, :])
    assert len(np.unique(out["ts"])) == 3


def test_negative_alpha_is_a_config_error():
    with pytest.raises(ConfigError, match="ridge alpha=-1"):
        fit_ridge(np.ones((3, 2)), np.ones(3), alpha=-1)
