"""Metric functions against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from app.evaluate import metrics as M


def test_pearson_matches_the_hand_computed_value():
    # da = [-1, 0, 1], db = [-4/3, -1/3, 5/3]: r = 3 / sqrt(2 * 42/9)
    assert M.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / math.sqrt(2 * 42 / 9))


def test_correlation_of_a_constant_side_is_nan():
    assert math.isnan(M.pearson([1, 1, 1], [1, 2, 3]))
    assert math.isnan(M.pearson([1], [2]))


def test_rankdata_averages_ties():
    np.testing.assert_allclose(M.rankdata([10, 30, 10, 20]), [1.5, 4, 1.5, 3])
    np.testing.assert_allclose(M.rankdata([3, 1, 2]), [3, 1, 2])


def test_ic_groups_rows_by_date_before_correlating():
    # Rows interleaved across dates: A = pred [1,2,3] vs label [1,2,4]; B = [3,2,1] vs [1,2,3];
    # C has a single row and carries no information.
    dates = np.array([1, 2, 1, 2, 1, 2, 3])
    pred = np.array([1, 3, 2, 2, 3, 1, 9.0])
    label = np.array([1, 1, 2, 2, 4, 3, 9.0])
    days, daily = M.per_date_ic(pred, label, dates)
    np.testing.assert_array_equal(days, [1, 2, 3])
    assert daily[0] == pytest.approx(3 / math.sqrt(2 * 42 / 9))
    assert daily[1] == pytest.approx(-1.0)
    assert math.isnan(daily[2])
    assert M.ic(pred, label, dates) == pytest.approx((daily[0] - 1.0) / 2)
    pooled = M.pearson(pred, label)  # ignoring the dates gives a different number
    assert abs(pooled - M.ic(pred, label, dates)) > 0.1


def test_rank_ic_uses_per_date_spearman_with_ties():
    # Date 1: ranks [1,2,3] vs [1,3,2] -> 1 - 6*2/(3*8) = 0.5.
    # Date 2: ranks [1.5,1.5,3] vs [1,2,3] -> 1.5 / sqrt(1.5*2) = sqrt(3)/2.
    dates = np.array(["2024-01-02", "2024-01-03"] * 3, dtype="datetime64[ns]")
    pred = np.array([1, 1, 2, 1, 3, 2.0])
    label = np.array([10, 1, 30, 2, 20, 3.0])
    _, daily = M.per_date_ic(pred, label, dates, rank=True)
    np.testing.assert_allclose(daily, [0.5, math.sqrt(3) / 2])
    assert M.rank_ic(pred, label, dates) == pytest.approx((0.5 + math.sqrt(3) / 2) / 2)


def test_directional_accuracy_skips_zero_labels_and_counts_zero_predictions_as_wrong():
    pred = [0.1, -0.2, 0.3, 0.0, 0.5]
    label = [0.2, 0.1, -0.1, 0.3, 0.0]
    assert M.directional_accuracy(pred, label) == pytest.approx(1 / 4)
    assert math.isnan(M.directional_accuracy([1.0], [0.0]))


def test_icir_is_mean_over_sample_std():
    assert M.icir(np.array([0.1, 0.2, 0.3, np.nan])) == pytest.approx(0.2 / 0.1)
    assert math.isnan(M.icir(np.array([0.1])))


def test_forecast_metrics_summarises_one_validation_set():
    dates = np.repeat([1, 2], 3)
    pred = np.array([1, 2, 3, 3, 2, 1.0])
    label = np.array([1, 2, 4, 1, 2, 3.0])
    out = M.forecast_metrics(pred, label, dates)
    assert out["mse"] == pytest.approx(np.mean((pred - label) ** 2))
    assert out["ic"] == pytest.approx(M.ic(pred, label, dates))
    assert out["rank_ic"] == pytest.approx((1.0 - 1.0) / 2)
    assert out["dir_acc"] == 1.0 and out["n"] == 6


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        M.per_date_ic([1, 2], [1, 2], [1])
