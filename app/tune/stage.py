"""Stage ``tune``: a sweep over the training function, then its best trial as the run's model.

Run folder outputs: ``tune/<name>/`` (Tune's experiment: one folder per trial with its
``result.json``, ``progress.csv``, TensorBoard events and checkpoints; with a URI storage root it is
written on the URI during the sweep, :mod:`app.tune.place`), ``tune/sweep.json``,
``tune_results.parquet`` / ``.csv`` (one row per trial), ``best_overrides.txt``,
``tune_summary.json``, ``tune_*.png``, and, like the train stage, ``checkpoints/best``,
``predictions.parquet`` and ``metrics.json`` from the best checkpoint, so ``evaluate`` and
``report`` run unchanged.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import ConfigError
from app.models.factory import plain_model_cfg
from app.run_folder import METRICS, PREDICTIONS, TUNE_SUMMARY, RunFolder
from app.stage_registry import BaseStage
from app.train.config import TrainConfig
from app.tune.config import TuneConfig
from app.tune.ranking import best_key
from app.tune.results import Best, best_trial, collect, table, write_table
from app.tune.space import SearchSpace, parse_space
from app.tune.trial import TrialSpec

if TYPE_CHECKING:
    from app.config import AppConfig

log = logging.getLogger(__name__)

SUMMARY_FILE = TUNE_SUMMARY


@dataclass
class SweepResult:
    experiment_dir: Path
    results_path: Path
    overrides_path: Path
    metrics_path: Path
    predictions_path: Path
    best_trial: str
    best_value: float
    n_trials: int
    trial_epochs: int  # epochs trained over all trials
    samples: int  # training samples over all trials and epochs
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the best trial's epochs
    plots: dict[str, str] = field(default_factory=dict, repr=False)
    gpu_peak_mb: float | None = None  # the largest CUDA peak any trial's worker reported


def plan(cfg: AppConfig) -> tuple[TuneConfig, SearchSpace, TrainConfig, dict, str, int]:
    """Everything checked from config alone, before any data is read."""
    from app.tune.sweep import trial_mode

    tcfg, train_cfg = cfg.tune, cfg.train
    model_cfg = plain_model_cfg(cfg.model)
    space = parse_space(tcfg.search_space, model_cfg)
    epochs = tcfg.epochs(train_cfg.epochs)
    if tcfg.scheduler == "asha" and tcfg.grace_period > epochs:
        raise ConfigError(f"tune.grace_period={tcfg.grace_period} exceeds the {epochs} epochs of a trial",
                          "lower tune.grace_period or raise tune.max_t")  # fmt: skip
    return tcfg, space, train_cfg, model_cfg, trial_mode(tcfg, train_cfg), epochs


def _fingerprint(cfg: AppConfig, tcfg: TuneConfig, model_cfg: dict, train_cfg: TrainConfig, mode: str) -> dict:
    """What must not change between a sweep and its resumption (Tune restores its own copy of these)."""
    from app.train.stage import features_path

    sweep = {k: v for k, v in tcfg.to_dict().items() if k not in ("resume", "plots")}
    return {"tune": sweep, "model": model_cfg, "train": train_cfg.to_dict(), "seq_len": int(cfg.windows.seq_len),
            "trial_mode": mode, "features_path": features_path(cfg)}  # fmt: skip


def _tune_info(tcfg: TuneConfig, exp: Path, best: Best, frame: Any, overrides: Path, mode: str,
               remote: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "experiment": exp.name, "experiment_dir": remote or str(exp), "trial_mode": mode, "metric": tcfg.metric,
        "mode": tcfg.metric_mode, "search": tcfg.search, "scheduler": tcfg.scheduler, "n_trials": int(len(frame)),
        "stopped_early": int(frame["stopped_early"].sum()), "trial_epochs": int(frame["epochs_run"].sum()),
        "best_trial": best.trial.trial_id, "best_values": best.trial.values,
        "best_value": best.row.get(tcfg.metric), "best_epoch": best.row.get("epoch"),
        "overrides_file": str(overrides), "restored_trials": _restored(frame),
    }  # fmt: skip


def _restored(frame: Any) -> dict[str, list[int]]:
    """Trial id → the checkpoint epochs it was restored from, for the trials that were."""
    return {str(r.trial_id): [int(e) for e in r.restored_from.split(",")]
            for r in frame.itertuples() if r.restores}  # fmt: skip


def preflight(cfg: AppConfig, run_dir: Path) -> None:
    """Before collection: a resume with nothing (or another sweep) to resume fails now, not after it."""
    from app.tune.place import experiment_uri
    from app.tune.sweep import check_experiment

    tcfg, _, train_cfg, model_cfg, mode, _ = plan(cfg)
    run_dir = Path(run_dir).resolve()
    check_experiment(tcfg, run_dir, _fingerprint(cfg, tcfg, model_cfg, train_cfg, mode),
                     experiment_uri(run_dir, cfg, tcfg.name))  # fmt: skip


def run(cfg: AppConfig, run_dir: Path) -> SweepResult:
    from app.ray_runtime import init_ray
    from app.train.stage import features_path
    from app.tune.best import evaluate_best
    from app.tune.overrides import best_overrides, run_overrides, write_overrides
    from app.tune.plots import plot_sweep
    from app.tune.callbacks import wall_seconds
    from app.tune.place import experiment_uri
    from app.tune.sweep import TIMES_FILE, prepare_experiment, run_sweep
    from app.tune.windows import build_windows

    run_dir = Path(run_dir).resolve()
    tcfg, space, train_cfg, model_cfg, mode, epochs = plan(cfg)
    remote = experiment_uri(run_dir, cfg, tcfg.name)  # None: the experiment stays in the run folder
    exp = prepare_experiment(tcfg, run_dir, _fingerprint(cfg, tcfg, model_cfg, train_cfg, mode), remote)
    init_ray(cfg.ray, cfg.storage)
    base, windows = build_windows(features_path(cfg), cfg, space.seq_lens(int(cfg.windows.seq_len)))
    base_cfg = {"train": train_cfg.to_dict(), "model": model_cfg, "windows": {"seq_len": int(cfg.windows.seq_len)}}
    spec = TrialSpec(base_cfg, space, tcfg.metric, tcfg.metric_mode, epochs, mode, windows, remote)
    trials = collect(run_sweep(spec, tcfg, exp, remote), space, remote)
    frame = table(trials, space, tcfg.metric, tcfg.metric_mode, epochs, train_cfg.early_stopping_patience,
                  wall_seconds(exp.parent / TIMES_FILE))
    results_path = write_table(frame, run_dir)
    best = best_trial(trials, tcfg.metric, tcfg.metric_mode)
    lines = best_overrides(run_overrides(run_dir, str(cfg.experiment_name)), space, best.trial.values, epochs=epochs,
                           metric=tcfg.metric, experiment_name=str(cfg.experiment_name))  # fmt: skip
    overrides = write_overrides(run_dir, lines)
    info = _tune_info(tcfg, exp, best, frame, overrides, mode, remote)
    for trial_id, epochs in info["restored_trials"].items():
        log.info("trial %s was restored from its checkpoint of epoch %s", trial_id, ", ".join(map(str, epochs)))
    evaluate_best(cfg, run_dir, base, best, info)
    plots = {}
    if tcfg.plots:
        plots = plot_sweep(trials, frame, space, tcfg.metric, tcfg.metric_mode, best.trial.trial_id, run_dir)
    RunFolder(run_dir).write_json(SUMMARY_FILE, {**info, "plots": plots, "overrides": lines})
    log.info("sweep done: %d trials (%d stopped early), best %s=%s in trial %s; best config: %s", info["n_trials"],
             info["stopped_early"], tcfg.metric, info["best_value"], best.trial.trial_id, overrides)  # fmt: skip
    return SweepResult(
        exp, results_path, overrides, run_dir / METRICS, run_dir / PREDICTIONS, best.trial.trial_id,
        float(frame[best_key(tcfg.metric)].iloc[0]), info["n_trials"], info["trial_epochs"],
        int(sum(int(r.get("train_samples") or 0) for t in trials for r in t.history)), best.trial.history, plots,
        max((r["gpu_peak_allocated_mb"] for t in trials for r in t.history if r.get("gpu_peak_allocated_mb")),
            default=None),
    )  # fmt: skip


class TuneStage(BaseStage):
    def preflight(self, cfg: AppConfig, run_dir: Path) -> None:
        preflight(cfg, run_dir)

    def run(self, cfg: AppConfig, run_dir: Path) -> SweepResult:
        return run(cfg, run_dir)

    def counts(self, result: Any) -> dict[str, Any]:
        return {"samples": getattr(result, "samples", None), "gpu_peak_mb": getattr(result, "gpu_peak_mb", None)}


STAGE = TuneStage()
