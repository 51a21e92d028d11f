"""OptunaSearch (TPE) + ASHA against random search + FIFO at the same budget of trial-epochs.

Both searches run the pipeline's own sweep (:mod:`app.tune`) over the same simulated market,
windows, search space (``conf/tune/<model>.yaml``) and seeds; only the sampler and the
scheduler differ. Random + FIFO runs ``budget // max_t`` trials of ``max_t`` epochs each;
Optuna + ASHA proposes trials until the sweep has trained ``budget`` trial-epochs in all
(``tune.max_trial_epochs``). With the same seed, TPE's random start-up trials are the very
configs the random sampler draws first.

Per seed and search: the best validation metric reached within the budget, and the best-so-far
curve over trial-epochs in the order epochs finished. The figure of merit is the number of
trial-epochs Optuna + ASHA needed to reach random search's final best, as a share of the
budget (goal: at most 40 %, with the same or a better final best). Per-trial start-up overhead
(wall time of a trial minus its epochs) is reported too. Prints one JSON object.
The figures in docs/tuning.md come from
``python -m bench.tune_search --symbols 10 --budget 72 --max-t 6 --seeds 0 1 2`` (the defaults).
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench._common import PeakRss, emit

ROOT = Path(__file__).resolve().parent.parent


def build_market(root: Path, n_symbols: int, start: str, today: str) -> str:
    """Bars of a simulated market straight into a store, then the features dataset; returns its path."""
    from app.features.features import build_features
    from app.collect.store import BarStore
    from app.sim.config import MarketConfig
    from app.sim.market import Market

    market = Market(MarketConfig(seed=7, n_symbols=n_symbols, start=start, today=today))
    store = BarStore(root)
    for symbol in market.symbols:
        store.write("D", symbol, market.daily_bars(symbol), source="sim")
    return build_features(str(root)).path


def sweep_space(model: str) -> tuple[dict, dict]:
    """The model's node and its default search space, as the config holds them."""
    model_cfg = yaml.safe_load((ROOT / "conf" / "model" / f"{model}.yaml").read_text())
    space = yaml.safe_load((ROOT / "conf" / "tune" / f"{model}.yaml").read_text())["search_space"]
    return model_cfg, space


def one_sweep(spec_args: dict, tcfg: Any, out: Path) -> dict[str, Any]:
    from app.tune.callbacks import wall_seconds
    from app.tune.results import collect
    from app.tune.sweep import TIMES_FILE, prepare_experiment, run_sweep
    from app.tune.trial import TrialSpec

    spec = TrialSpec(**spec_args)
    exp = prepare_experiment(tcfg, out, {"bench": True})
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Tune's progress tables; stdout carries the JSON
        trials = collect(run_sweep(spec, tcfg, exp), spec.space)
    walls = wall_seconds(exp.parent / TIMES_FILE)
    overheads = [walls[t.trial_id] - sum(r.get("epoch_seconds") or 0 for r in t.history)
                 for t in trials if t.trial_id in walls]  # fmt: skip
    return {"trials": trials, "wall_s": time.perf_counter() - started, "overheads": overheads}


def best_so_far(trials: list, metric: str, mode: str, budget: int) -> list[float]:
    """The best metric after each trial-epoch, epochs taken in the order they finished, cut at ``budget``."""
    rows = [r for t in trials for r in t.history if r.get(metric) is not None]
    rows.sort(key=lambda r: float(r["started_at"]) + float(r["epoch_seconds"]))
    sign = 1.0 if mode == "min" else -1.0
    curve, best = [], np.inf
    for r in rows[:budget]:
        v = float(r[metric])
        if np.isfinite(v):
            best = min(best, sign * v)
        curve.append(sign * best)
    return curve


def epochs_to_reach(curve: list[float], target: float, mode: str) -> int | None:
    for i, v in enumerate(curve, start=1):
        if (v <= target) if mode == "min" else (v >= target):
            return i
    return None


def summarize(name: str, run: dict, metric: str, mode: str, budget: int) -> dict[str, Any]:
    """The figures of one sweep; ``_curve`` keeps full precision for the comparison (printed rounded)."""
    curve = best_so_far(run["trials"], metric, mode, budget)
    epochs = [len(t.history) for t in run["trials"]]
    return {
        "search": name, "best": curve[-1] if curve else None, "trial_epochs": len(curve), "trials": len(epochs),
        "trials_stopped_early": int(sum(e < max(epochs) for e in epochs)) if epochs else 0,
        "wall_s": round(run["wall_s"], 1), "median_trial_overhead_s": round(float(np.median(run["overheads"])), 2),
        "curve": [float(f"{v:.5g}") for v in curve], "_curve": curve,
    }  # fmt: skip


def run_seed(seed: int, args: argparse.Namespace, base: dict, space, windows, work: Path) -> dict[str, Any]:
    from app.tune.config import TuneConfig

    metric, mode = args.metric, TuneConfig(metric=args.metric).metric_mode
    train = {**base["train"], "seed": seed}
    spec_args = dict(base={**base, "train": train}, space=space, metric=metric, mode=mode, epochs=args.max_t,
                     mode_of_trial="direct", windows=windows)  # fmt: skip
    common = dict(metric=metric, seed=seed, max_t=args.max_t, plots=False, max_concurrent_trials=2)
    random_cfg = TuneConfig(**common, search="random", scheduler="fifo", num_samples=args.budget // args.max_t)
    asha_cfg = TuneConfig(**common, search="optuna", scheduler="asha", num_samples=args.budget,
                          n_startup_trials=args.startup, grace_period=1, reduction_factor=args.reduction_factor,
                          max_trial_epochs=args.budget)  # fmt: skip
    rnd = summarize("random+fifo", one_sweep(spec_args, random_cfg, work / f"random_{seed}"), metric, mode, args.budget)
    opt = summarize("optuna+asha", one_sweep(spec_args, asha_cfg, work / f"optuna_{seed}"), metric, mode, args.budget)
    reach = epochs_to_reach(opt.pop("_curve"), rnd["best"], mode)
    rnd.pop("_curve")
    better = (opt["best"] <= rnd["best"]) if mode == "min" else (opt["best"] >= rnd["best"])
    return {"seed": seed, "random": rnd, "optuna": opt, "optuna_same_or_better": bool(better),
            "optuna_epochs_to_random_best": reach,
            "optuna_share_of_budget": None if reach is None else round(reach / args.budget, 3)}  # fmt: skip


def report(args: argparse.Namespace, results: list[dict], raw_space: dict, windows: dict) -> dict[str, Any]:
    shares = [r["optuna_share_of_budget"] for r in results]
    return {
        "benchmark": "tune_search", "model": args.model, "metric": args.metric,
        "budget_trial_epochs": args.budget, "max_t": args.max_t, "symbols": args.symbols, "start": args.start,
        "train_windows": {n: w.n_train for n, w in windows.items()}, "seeds": args.seeds,
        "search_space": raw_space, "per_seed": results,
        "summary": {
            "optuna_same_or_better": sum(r["optuna_same_or_better"] for r in results),
            "optuna_reached_random_best": sum(s is not None for s in shares),
            "median_share_of_budget": None if None in shares else float(np.median(shares)),
            "shares_of_budget": shares,
            "goal": "same or better best metric with <= 40% of the trial-epochs",
            "goal_met_per_seed": [bool(r["optuna_same_or_better"] and s is not None and s <= 0.4)
                                  for r, s in zip(results, shares)],
        },
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--start", default="2019-01-02")
    parser.add_argument("--today", default="2025-12-30")
    parser.add_argument("--budget", type=int, default=72, help="trial-epochs per search")
    parser.add_argument("--max-t", type=int, default=6)
    parser.add_argument("--startup", type=int, default=6, help="TPE's random start-up trials")
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument("--metric", default="val_loss")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    import ray

    from app.features.feature_config import DataPipelineConfig
    from app.train.config import TrainConfig
    from app.tune.space import parse_space
    from app.tune.windows import build_windows

    ray.init(num_cpus=2, object_store_memory=1024**3, include_dashboard=True, log_to_driver=False)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tune_bench_") as tmp, PeakRss() as rss:
        work = Path(tmp)
        features = build_market(work / "store", args.symbols, args.start, args.today)
        model_cfg, raw_space = sweep_space(args.model)
        space = parse_space(raw_space, model_cfg)
        cfg = DataPipelineConfig()
        _, windows = build_windows(features, cfg, space.seq_lens(20))
        train = TrainConfig(batch_size=args.batch_size, early_stopping_patience=0, epochs=args.max_t).to_dict()
        base = {"train": train, "model": model_cfg, "windows": {"seq_len": 20}}
        results = [run_seed(s, args, base, space, windows, work) for s in args.seeds]
    emit({**report(args, results, raw_space, windows), "wall_s": round(time.perf_counter() - began, 1),
          "peak_rss_gib": rss.gib})
    ray.shutdown()


if __name__ == "__main__":
    main()
