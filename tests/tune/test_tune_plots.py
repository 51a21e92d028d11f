"""The sweep's curve plot zooms on where trials end up, not on a few bad first epochs."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from app.tune.plots import _focus
from app.tune.results import TrialResult, best_row


def trial(i: int, losses: list[float]) -> TrialResult:
    history = [{"epoch": e + 1, "val_loss": v, "val_ic": -v} for e, v in enumerate(losses)]
    return TrialResult(f"t{i}", {}, history, [], False, "")


def bests(trials: list[TrialResult], metric: str, mode: str) -> pd.Series:
    """The results table's best-value column for these trials."""
    return pd.Series([best_row(t.history, metric, mode)[metric] for t in trials])


def outside(trials: list[TrialResult], metric: str, lo: float, hi: float) -> int:
    return sum(not lo <= r[metric] <= hi for t in trials for r in t.history)


def test_a_diverged_first_epoch_does_not_set_the_scale():
    trials = [trial(i, [1.0 + i / 100, 1.0 + i / 200, 1.0 + i / 300]) for i in range(9)]
    trials.append(trial(9, [50.0, 1.2, 1.02]))  # one bad start, then a normal trial
    for metric, mode, sign in (("val_loss", "min", 1), ("val_ic", "max", -1)):
        fig, ax = plt.subplots()
        clipped = _focus(ax, trials, bests(trials, metric, mode), metric, mode)
        lo, hi = ax.get_ylim()
        assert not lo <= sign * 50.0 <= hi and clipped == outside(trials, metric, lo, hi) >= 1
        ends = [sign * (1.0 + i / 300) for i in range(9)] + [sign * 1.02]  # where the trials ended up
        assert sum(lo <= b <= hi for b in ends) >= 9  # all but the worst tenth
        assert hi - lo < 1.0  # the scale is the trials' spread, not the diverged point's
        plt.close(fig)


def test_nothing_is_clipped_when_all_points_are_near():
    trials = [trial(i, [1.0 + i / 100, 1.0]) for i in range(5)]
    fig, ax = plt.subplots()
    before = ax.get_ylim()
    assert _focus(ax, trials, bests(trials, "val_loss", "min"), "val_loss", "min") == 0 and ax.get_ylim() == before
    plt.close(fig)
