"""Sweep plots: the metric per epoch of every trial, parameter importance, metric against each value."""
from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: servers and Ray workers

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from app.tune.ranking import best_key  # noqa: E402
from app.tune.results import TrialResult  # noqa: E402
from app.tune.space import SearchSpace  # noqa: E402

log = logging.getLogger(__name__)
DPI = 110
MIN_TRIALS_FOR_IMPORTANCE = 5  # fewer trials give importances that are noise
REASON_STYLE = {"completed": ("#1f77b4", "-"), "patience": ("#9467bd", "-"), "stopped": ("#aaaaaa", "--"),
                "error": ("#d62728", ":"), "not_started": ("#dddddd", ":")}  # fmt: skip


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _placeholder(path: Path, title: str, message: str) -> Path:
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, wrap=True)
    return _save(fig, path)


def plot_curves(trials: list[TrialResult], frame: pd.DataFrame, metric: str, mode: str, best_id: str,
                path: Path) -> Path:  # fmt: skip
    """``metric`` per epoch, one line per trial; stopped trials dashed, the best trial bold."""
    reasons = dict(zip(frame["trial_id"], frame["stop_reason"]))
    fig, ax = plt.subplots(figsize=(9, 5))
    drawn = set()
    for t in trials:
        pts = [(r["epoch"], r.get(metric)) for r in t.history if r.get(metric) is not None]
        pts = [(e, v) for e, v in pts if np.isfinite(float(v))]
        if not pts:
            continue
        e, v = zip(*pts)
        reason = reasons.get(t.trial_id, "stopped")
        color, ls = REASON_STYLE.get(reason, ("#7f7f7f", "-"))
        best = t.trial_id == best_id
        label = f"best ({t.trial_id})" if best else (reason if reason not in drawn else None)
        drawn.add(reason)
        ax.plot(e, v, ls=ls, color="#2ca02c" if best else color, lw=2.4 if best else 1.0, marker="o",
                ms=3, alpha=1.0 if best else 0.75, label=label, zorder=3 if best else 2)  # fmt: skip
    if not drawn:
        plt.close(fig)
        return _placeholder(path, f"{metric} per epoch", "no trial reported a finite value")
    clipped = _focus(ax, trials, frame[best_key(metric)], metric, mode)
    note = f"; {clipped} early points off the axis" if clipped else ""
    ax.set_title(f"{metric} per epoch, {len(trials)} trials (dashed: stopped by the scheduler{note})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="best", fontsize=9)
    return _save(fig, path)


def _focus(ax, trials: list[TrialResult], bests: pd.Series, metric: str, mode: str) -> int:
    """Zoom the y axis on where the trials end up (``bests``: each trial's best value), leaving out
    the worst tenth of them.

    A few bad first epochs would otherwise set the scale and flatten the curves that matter into
    one line. Returns how many points fall outside the view.
    """
    bests = bests.astype(float).to_numpy()
    bests = bests[np.isfinite(bests)]
    values = np.asarray([float(r[metric]) for t in trials for r in t.history if r.get(metric) is not None], float)
    values = values[np.isfinite(values)]
    if bests.size < 3 or not values.size:
        return 0
    lo, hi = (values.min(), np.quantile(bests, 0.9)) if mode == "min" else (np.quantile(bests, 0.1), values.max())
    pad = 0.08 * (hi - lo) if hi > lo else abs(hi) * 0.05 + 1e-12
    lo, hi = lo - pad, hi + pad
    outside = int(((values < lo) | (values > hi)).sum())
    if outside:
        ax.set_ylim(lo, hi)
    return outside


def _log_if_wide(ax, values: list, axis: str = "y") -> None:
    """A log scale when positive values span more than 20x (a few diverged trials hide the rest)."""
    v = np.asarray([float(x) for x in values], float)
    v = v[np.isfinite(v)]
    if v.size and v.min() > 0 and v.max() / v.min() > 20:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def importances(frame: pd.DataFrame, space: SearchSpace, metric: str, mode: str) -> dict[str, float]:
    """PED-ANOVA importance (Optuna's numpy-only evaluator): how much each value's distribution
    among the best trials (top quarter, at least 3) differs from its distribution among all."""
    import optuna

    col = best_key(metric)
    done = frame[np.isfinite(frame[col].astype(float))]
    varied = [p for p in space if done[p.name].nunique() > 1]
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE or not varied:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if mode == "min" else "maximize")
    for _, row in done.iterrows():
        params = {p.name: _native(row[p.name]) for p in varied}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={p.name: p.optuna_distribution() for p in varied}, value=float(row[col])))
    quantile = min(0.5, max(0.1, 3 / len(done), 0.25))
    evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile, region_quantile=1.0)
    return optuna.importance.get_param_importances(study, evaluator=evaluator, normalize=True)


def _native(value):
    return value.item() if isinstance(value, np.generic) else value


def plot_importance(frame: pd.DataFrame, space: SearchSpace, metric: str, mode: str, path: Path) -> Path:
    try:
        imp = importances(frame, space, metric, mode)
    except Exception as exc:  # a degenerate sweep (e.g. identical values) must not fail the run
        log.warning("parameter importance unavailable: %s", exc)
        imp = {}
    if not imp:
        message = f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials with varied values"
        return _placeholder(path, "Parameter importance", message)
    names, values = zip(*sorted(imp.items(), key=lambda kv: kv[1]))
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.5 * len(names)))
    ax.barh(names, values, color="#1f77b4")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=9)
    ax.set_xlim(0, max(values) * 1.2 or 1)
    ax.set_title(f"Parameter importance for {best_key(metric)} (PED-ANOVA, {len(frame)} trials)")
    ax.set_xlabel("normalised importance for reaching the best trials")
    return _save(fig, path)


def plot_values(frame: pd.DataFrame, space: SearchSpace, metric: str, path: Path) -> Path:
    """The trials' best metric against each searched value (log axis for log-scaled ones)."""
    col = best_key(metric)
    n = len(space.params)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    full = frame["stop_reason"].isin(["completed", "patience"])
    for ax, p in zip(axes.flat, space):
        x = frame[p.name]
        if p.type == "choice":
            cats = [str(v) for v in p.values]
            x = x.map(lambda v: cats.index(str(v)) if str(v) in cats else np.nan)
            ax.set_xticks(range(len(cats)), cats)
        ax.scatter(x[full], frame.loc[full, col], color="#1f77b4", s=22, label="ran to the end")
        ax.scatter(x[~full], frame.loc[~full, col], color="#aaaaaa", s=22, marker="x", label="stopped early")
        if p.type == "loguniform" or (p.type == "int" and p.log):
            ax.set_xscale("log")
            ticks = np.geomspace(p.low, p.high, 3)  # a range within one decade has no labelled major tick
            ax.set_xticks(ticks, [f"{t:.1e}" for t in ticks])
            ax.xaxis.set_minor_formatter(NullFormatter())
        _log_if_wide(ax, list(frame[col]))
        ax.set_title(f"{p.name} ({p.path})", fontsize=10)
        ax.set_ylabel(col)
    axes.flat[0].legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_sweep(trials: list[TrialResult], frame: pd.DataFrame, space: SearchSpace, metric: str, mode: str,
               best_id: str, run_dir: Path) -> dict[str, str]:  # fmt: skip
    run_dir = Path(run_dir)
    return {
        "curves": str(plot_curves(trials, frame, metric, mode, best_id, run_dir / "tune_curves.png")),
        "importance": str(plot_importance(frame, space, metric, mode, run_dir / "tune_importance.png")),
        "values": str(plot_values(frame, space, metric, run_dir / "tune_values.png")),
    }
