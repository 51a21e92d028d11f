"""The single-pass rolling kernels give today's numbers: every feature column of the kernels' engine
against the numpy/pandas statistics it replaced (``legacy_rolling.py``), on simulator bars and on
bars loaded through the file source, to 1e-6 of the feature's scale."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import app.features.feature_compute as feature_compute
from app.features.alpha import DERIVED, ROLLING
from app.features.feature_config import Alpha158Config, FeaturesConfig, LabelConfig
from app.features.panel import Rolling
from app.features import rolling_kernels as kernels
from tests.data.legacy_rolling import LegacyRolling
from tests.data.test_features import to_table
from tests.data.test_warmup import file_bars, sim_bars

RTOL = 1e-6
CFG = FeaturesConfig(alpha158=Alpha158Config(rolling=list(ROLLING)), calendar=["dow", "dom", "month", "tod"])


def both_engines(bars: pa.Table, monkeypatch) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    _, new, _, _ = feature_compute.compute_columns(bars, CFG, LabelConfig())
    with monkeypatch.context() as m:
        m.setattr(feature_compute, "rolling_context", lambda panels: LegacyRolling(panels, DERIVED))
        _, old, _, _ = feature_compute.compute_columns(bars, CFG, LabelConfig())
    return new, old


def scaled_errors(new: dict[str, np.ndarray], old: dict[str, np.ndarray]) -> dict[str, float]:
    """Per column: max |new - old| / max(|old|, median |old|); inf where the NaN masks differ."""
    out = {}
    for name, ref in old.items():
        got = new[name]
        if not np.array_equal(np.isnan(got), np.isnan(ref)):
            out[name] = float("inf")
            continue
        ok = ~np.isnan(ref)
        scale = np.maximum(np.abs(ref[ok]), np.median(np.abs(ref[ok])) if ok.any() else 0.0)
        out[name] = float(np.max(np.abs(got[ok] - ref[ok]) / np.where(scale > 0, scale, 1.0), initial=0.0))
    return out


@pytest.mark.parametrize("source", ["sim", "file"])
def test_kernels_equal_the_previous_engine_on_every_column(source, tmp_path, make_bars, monkeypatch):
    symbols = sim_bars() if source == "sim" else file_bars(tmp_path, make_bars)
    new, old = both_engines(pa.concat_tables(symbols), monkeypatch)
    assert set(new) == set(old) and len(new) > 150
    errors = scaled_errors(new, old)
    bad = {k: v for k, v in errors.items() if not v <= RTOL}
    assert bad == {}, bad


def test_the_comparison_can_fail(make_bars, monkeypatch):
    """A kernel whose window is one row too long is caught: the check above is not vacuous."""
    bars = to_table(make_bars(["000010"], 200, seed=1))
    monkeypatch.setattr(Rolling, "_max", lambda self, name, d: kernels.rolling_extreme(self[name], d + 1, True)[0])
    errors = scaled_errors(*both_engines(bars, monkeypatch))
    assert errors["a158_max5"] > RTOL and errors["a158_min5"] <= RTOL


def test_kernels_on_windows_with_nan_ties_and_short_columns():
    """NaN inside a window blanks exactly the windows that hold it; ties rank averaged; a column
    shorter than the window stays NaN."""
    a = np.asfortranarray(np.array([[1.0, 5.0], [2.0, 5.0], [np.nan, 5.0], [4.0, 5.0], [3.0, 5.0], [2.0, 5.0]]))
    s = kernels.rolling_sum(a, 2)
    np.testing.assert_allclose(s[:, 0], [np.nan, 3, np.nan, np.nan, 7, 5], equal_nan=True)
    hi, at = kernels.rolling_extreme(a, 3, True)
    np.testing.assert_allclose(hi[:, 0], [np.nan, np.nan, np.nan, np.nan, np.nan, 4], equal_nan=True)
    np.testing.assert_allclose(at[:, 0], [np.nan] * 5 + [1], equal_nan=True)  # 4 is the window's oldest row
    np.testing.assert_allclose(at[2:, 1], [1] * 4)  # all tied: the first (oldest) one, as numpy's argmax
    lo, at = kernels.rolling_extreme(np.asfortranarray(a[[0, 1, 3, 4, 5]]), 3, False)
    np.testing.assert_allclose(lo[2:, 0], [1, 2, 2])
    np.testing.assert_allclose(at[2:, 0], [1, 1, 3])
    quant, rank = kernels.rolling_order(a, 3, np.array([0.5]))
    np.testing.assert_allclose(quant[0, :, 0], [np.nan] * 5 + [3], equal_nan=True)
    np.testing.assert_allclose(rank[2:, 1], [2 / 3] * 4)  # all tied: (0 + 3 + 1) / (2 * 3), scipy's 'rank'
    assert np.isnan(kernels.rolling_slope(a[:2], 3)).all()


def test_fused_correlation_equals_the_moments_formula_bit_for_bit():
    """``rolling_corr`` is ``Rolling``'s moments formula exactly, also where only
    one series has a NaN (each keeps its own sums) and where a variance is 0 (NaN, as ``safe_div``
    gives), or about 0."""
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(300, 4)), 1)
    y = np.round(rng.normal(size=(300, 4)), 1) + x
    x[rng.random(x.shape) < 0.01] = np.nan
    y[rng.random(y.shape) < 0.01] = np.nan
    y[100:160, 1] = 2.0  # a constant stretch: variance ~0 from the running sums, whatever they give
    y[:, 3] = 2.0  # a constant column: variance exactly 0
    x[250:, 2] = np.nan
    x, y = np.asfortranarray(x), np.asfortranarray(y)
    panels = Rolling({"x": x, "y": y}, {})
    for d in (2, 5, 20, 60):
        fused = kernels.rolling_corr(x, y, d)
        assert np.array_equal(fused, panels._corr_of_moments("x", d, "y"), equal_nan=True)
        assert np.isnan(fused[:, 3]).all()
        assert np.isfinite(fused[:, 0]).any()  # not vacuous: some windows are whole
