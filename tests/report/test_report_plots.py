"""Every plot writes a real, non-trivial PNG, including the placeholders for missing inputs."""
from __future__ import annotations

import matplotlib.image as mpimg
import pandas as pd
import pytest

from app.evaluate import evaluate_run
from app.report import plots_eval, plots_run
from tests.evaluate.evalmarket import random_market
from tests.report.conftest import history

PNG = b"\x89PNG\r\n\x1a\n"


def _check_png(path, min_bytes=8_000):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > min_bytes
    height, width = mpimg.imread(path).shape[:2]
    assert width >= 500 and height >= 250


@pytest.fixture(scope="module")
def evaluation():
    bars, preds = random_market(n_days=40, n_symbols=8, seed=7)
    return evaluate_run(preds, bars, {"top_k": 3})


def test_evaluation_plots(tmp_path, evaluation):
    _check_png(plots_eval.plot_ic(evaluation.ic_daily, tmp_path / "ic.png", window=5))
    _check_png(plots_eval.plot_backtest(evaluation.backtest_daily, tmp_path / "bt.png"))
    _check_png(plots_eval.plot_models(evaluation.backtest_daily, tmp_path / "models.png"))
    _check_png(plots_eval.plot_scatter(evaluation.oos, tmp_path / "scatter.png"))
    _check_png(plots_eval.plot_scatter(evaluation.oos, tmp_path / "hexbin.png", max_points=50))


def test_run_plots(tmp_path):
    _check_png(plots_run.plot_training(history(), tmp_path / "loss.png", best_epoch=3))
    stages = [{"stage": "collect", "wall_s": 2.0, "unit": "bars", "per_s": 160.0, "requests_per_s": 8.0, "rate_limit": 20},
              {"stage": "train", "wall_s": 5.0, "unit": "samples", "per_s": 4000.0}]
    _check_png(plots_run.plot_throughput(stages, tmp_path / "throughput.png"), min_bytes=5_000)


def test_placeholders_when_there_is_nothing_to_draw(tmp_path):
    _check_png(plots_run.plot_training([], tmp_path / "loss.png"), min_bytes=2_000)
    empty_ic = pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns, Asia/Seoul]"), "ic": [], "rank_ic": [], "model": []})
    _check_png(plots_eval.plot_ic(empty_ic, tmp_path / "ic.png"), min_bytes=2_000)
