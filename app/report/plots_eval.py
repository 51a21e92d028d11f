"""Evaluation plots: IC per date, portfolio growth with drawdown, model vs baselines, scatter."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullFormatter

from app.report import style


def _naive(ts: pd.Series) -> pd.Series:
    """KST wall-clock timestamps without a zone, so axes show Korean dates."""
    ts = pd.to_datetime(ts)
    return ts.dt.tz_convert("Asia/Seoul").dt.tz_localize(None) if ts.dt.tz is not None else ts


def plot_ic(ic_daily: pd.DataFrame, path: Path, *, window: int = 20, model: str = "model", dpi: int = 110) -> Path:
    rows = ic_daily[ic_daily["model"] == model] if "model" in ic_daily else ic_daily
    rows = rows.sort_values("ts")
    if rows.empty or not np.isfinite(rows["ic"].to_numpy(float)).any():
        return style.empty(path, "IC per date", f"no defined IC for {model}", dpi)
    ts = _naive(rows["ts"])
    fig, ax = style.figure(size=(10, 4.5))
    ax.bar(ts, rows["ic"], width=1.0, color=style.color(model), alpha=0.35, label="IC (per date)")
    roll = rows["ic"].rolling(window, min_periods=max(2, window // 2)).mean()
    ax.plot(ts, roll, color=style.color(model), lw=2, label=f"IC, {window}-date rolling mean")
    rank_roll = rows["rank_ic"].rolling(window, min_periods=max(2, window // 2)).mean()
    ax.plot(ts, rank_roll, color="#d62728", lw=1.5, ls="--", label=f"rank IC, {window}-date rolling mean")
    ax.axhline(0, color="black", lw=0.8)
    mean_ic = np.nanmean(rows["ic"].to_numpy(float))
    ax.set_title(f"Cross-sectional IC per date ({model}; mean {mean_ic:.3f})")
    ax.set_xlabel("signal date")
    ax.set_ylabel("correlation")
    style.date_axis(ax)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=9, frameon=False)
    return style.save(fig, path, dpi)


def _growth(daily: pd.DataFrame) -> pd.Series:
    return (1.0 + daily["ret"]).cumprod() - 1.0


def plot_backtest(backtest_daily: pd.DataFrame, path: Path, *, model: str = "model", dpi: int = 110) -> Path:
    books = [(p, backtest_daily[(backtest_daily["model"] == model) & (backtest_daily["portfolio"] == p)])
             for p in ("top_k", "long_short")]
    books += [("equal_weight", backtest_daily[backtest_daily["model"] == "benchmark"])]
    books = [(p, d.sort_values("ts")) for p, d in books if not d.empty]
    if not books:
        return style.empty(path, "Backtest", f"no backtest for {model}", dpi)
    labels = {"top_k": f"{model}: top-k long", "long_short": f"{model}: long-short quantiles",
              "equal_weight": "benchmark: equal-weight universe"}
    fig, (top, bottom) = style.figure(2, 1, size=(10, 6.5), sharex=True, gridspec_kw={"height_ratios": [2.2, 1]})
    for name, daily in books:
        ts = _naive(daily["ts"])
        top.plot(ts, _growth(daily), color=style.color(name), lw=1.8, label=labels[name])
        bottom.plot(ts, daily["drawdown"], color=style.color(name), lw=1.2)
        bottom.fill_between(ts, daily["drawdown"], 0, color=style.color(name), alpha=0.12)
    top.axhline(0, color="black", lw=0.8)
    top.set_title(f"Cumulative return after costs ({model} vs benchmark)")
    top.set_ylabel("cumulative return")
    style.percent_axis(top)
    top.legend(loc="best", fontsize=9)
    bottom.set_ylabel("drawdown")
    bottom.set_xlabel("date")
    style.percent_axis(bottom)
    style.date_axis(bottom)
    return style.save(fig, path, dpi)


def plot_models(backtest_daily: pd.DataFrame, path: Path, *, portfolio: str = "top_k", without_book: tuple[str, ...] = (),
                dpi: int = 110) -> Path:
    """One book for every forecaster (model, baselines, oracle) against the benchmark."""
    chosen = backtest_daily[(backtest_daily["portfolio"] == portfolio) | (backtest_daily["model"] == "benchmark")]
    if chosen.empty:
        return style.empty(path, "Model vs baselines", "no backtests", dpi)
    fig, ax = style.figure(size=(10, 4.8))
    lo, hi = 1.0, 1.0
    for i, (name, daily) in enumerate(chosen.groupby("model", sort=False)):
        daily = daily.sort_values("ts")
        growth = 1.0 + _growth(daily)
        lo, hi = min(lo, growth.min()), max(hi, growth.max())
        ax.plot(_naive(daily["ts"]), growth, color=style.color(name, i), lw=1.6,
                ls="--" if name == "benchmark" else "-", label=name)
    ax.axhline(1, color="black", lw=0.8)
    scale = ""
    if hi / max(lo, 1e-9) > 4:  # a strong oracle dwarfs everything else on a linear axis
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        scale = " (log scale)"
    ax.set_title(f"{portfolio.replace('_', '-')} book of each forecaster vs benchmark, after costs")
    ax.set_ylabel(f"growth of 1 KRW{scale}")
    ax.set_xlabel("date")
    style.date_axis(ax)
    title = f"no book (no ranking): {', '.join(without_book)}" if without_book else None
    ax.legend(loc="upper left", fontsize=9, title=title, title_fontsize=8)
    return style.save(fig, path, dpi)


def plot_scatter(oos: pd.DataFrame, path: Path, *, column: str = "prediction", max_points: int = 4000,
                 seed: int = 0, dpi: int = 110) -> Path:
    rows = oos.loc[np.isfinite(oos[column]) & np.isfinite(oos["label"]), [column, "label"]] if len(oos) else oos
    if len(rows) < 2:
        return style.empty(path, "Predicted vs realised", "fewer than two scored rows", dpi)
    x, y = rows[column].to_numpy(float), rows["label"].to_numpy(float)
    fig, ax = style.figure(size=(6.5, 6))
    if len(rows) > max_points:
        hb = ax.hexbin(x, y, gridsize=60, bins="log", cmap="Blues", mincnt=1)
        fig.colorbar(hb, ax=ax, label="rows (log)")
    else:
        ax.scatter(x, y, s=6, alpha=0.35, color=style.color("model"), linewidths=0)
    if np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        grid = np.linspace(x.min(), x.max(), 50)
        ax.plot(grid, slope * grid + intercept, color="#d62728", lw=1.6, label=f"least squares (slope {slope:.2f})")
        ax.legend(loc="upper left", fontsize=9)
    corr = np.corrcoef(x, y)[0, 1] if np.ptp(x) > 0 and np.ptp(y) > 0 else float("nan")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_title(f"Predicted vs realised return (n={len(rows):,}, pooled corr {corr:.3f})")
    ax.set_xlabel("predicted return")
    ax.set_ylabel("realised return (label)")
    return style.save(fig, path, dpi)
