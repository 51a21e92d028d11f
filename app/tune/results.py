"""One row per trial (its values, best metric, epochs run, why it stopped) and the sweep's best trial."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app import storage
from app.errors import AppError
from app.run_folder import TUNE_RESULTS, TUNE_RESULTS_CSV, RunFolder
from app.tune.place import is_dir
from app.tune.ranking import best_key
from app.tune.space import SearchSpace

RESULTS_FILE = TUNE_RESULTS
RESULTS_CSV = TUNE_RESULTS_CSV
#: Tune's own bookkeeping in every result row; the epoch rows keep only what the loop reported.
TUNE_KEYS = {"timestamp", "checkpoint_dir_name", "should_checkpoint", "done", "training_iteration", "trial_id",
             "date", "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "time_since_restore",
             "iterations_since_restore"}  # fmt: skip


@dataclass(frozen=True)
class TrialResult:
    """What the table, the plots and the re-evaluation need from one Tune trial."""

    trial_id: str
    values: dict[str, Any]
    history: list[dict[str, Any]]  # one row per epoch, in epoch order
    checkpoints: list[tuple[str, dict[str, Any]]]  # (folder, that epoch's row), kept on disk
    error: bool
    path: str
    filesystem: Any = None  # the pyarrow filesystem of the checkpoints when the sweep is on a storage URI


def _history(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    if df is None or df.empty or "epoch" not in df:
        return []
    df = df.dropna(subset=["epoch"]).sort_values("epoch").drop_duplicates("epoch", keep="last")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()
             if k not in TUNE_KEYS and not str(k).startswith("config/")} for row in df.to_dict("records")]  # fmt: skip


def _checkpoints(result: Any, history: list[dict[str, Any]], fs: Any = None) -> list[tuple[str, dict[str, Any]]]:
    """Tune's kept checkpoints (direct trials), or the Ray Train checkpoints a trainer trial reported
    (paths on ``fs`` when the sweep is on a storage URI)."""
    kept = [(c.path, m) for c, m in (result.best_checkpoints or [])]
    kept += [(r["checkpoint_path"], r) for r in history if isinstance(r.get("checkpoint_path"), str)]
    if fs is not None:
        return [(p, m) for p, m in kept if is_dir(fs, p)]
    return [(p, m) for p, m in kept if Path(p).is_dir()]


def collect(grid: Any, space: SearchSpace, remote: str | None = None) -> list[TrialResult]:
    """The trials of a finished sweep; ``remote``: the experiment's URI when it is on a storage URI."""
    fs = storage.filesystem(remote)[0] if remote else None
    out = []
    for result in grid:
        history = _history(result.metrics_dataframe)
        config = result.config or {}
        trial_id = str((result.metrics or {}).get("trial_id") or Path(result.path).name.removeprefix("trial_"))
        out.append(TrialResult(trial_id, {n: config.get(n) for n in space.names}, history,
                               _checkpoints(result, history, fs), result.error is not None, str(result.path),
                               fs))  # fmt: skip
    return out


def _better(a: float, b: float, mode: str) -> bool:
    return a < b if mode == "min" else a > b


def best_row(rows: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    """The epoch with the best finite ``metric`` (the first of equals)."""
    best = None
    for row in rows:
        v = row.get(metric)
        if v is None or not np.isfinite(float(v)):
            continue
        if best is None or _better(float(v), float(best[metric]), mode):
            best = row
    return best


def stop_reason(t: TrialResult, max_t: int, patience: int) -> str:
    """completed (max_t epochs), patience (early stopping in the loop), stopped (ASHA or the budget), error."""
    if t.error:
        return "error"
    if not t.history:
        return "not_started"
    last = t.history[-1]
    if int(last["epoch"]) >= max_t:
        return "completed"
    if patience > 0 and int(last["epoch"]) - int(last.get("best_epoch") or 0) >= patience:
        return "patience"
    return "stopped"


def restored_from(history: list[dict[str, Any]]) -> list[int]:
    """The checkpoint epochs a trial was restored from (a lost node, a failed attempt, a resumed sweep):
    each epoch row says which checkpoint its attempt started from, 0 for a start from scratch."""
    return sorted({int(r["restored_from_epoch"]) for r in history if r.get("restored_from_epoch")})


def table(trials: list[TrialResult], space: SearchSpace, metric: str, mode: str, max_t: int, patience: int,
          walls: dict[str, float] | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per trial, best first; ``walls`` (trial id → wall seconds) adds the per-trial overhead."""
    walls = walls or {}
    rows = []
    for t in trials:
        best = best_row(t.history, metric, mode) or {}
        reason = stop_reason(t, max_t, patience)
        epochs_s = float(sum(r.get("epoch_seconds") or 0.0 for r in t.history))
        wall = walls.get(t.trial_id, np.nan)
        restored = restored_from(t.history)
        rows.append({
            "trial_id": t.trial_id, **t.values,
            best_key(metric): best.get(metric, np.nan), "best_epoch": best.get("epoch"),
            f"last_{metric}": t.history[-1].get(metric) if t.history else np.nan,
            "epochs_run": int(t.history[-1]["epoch"]) if t.history else 0,
            "stopped_early": reason in ("patience", "stopped"), "stop_reason": reason,
            "epoch_seconds": epochs_s, "wall_seconds": wall, "overhead_seconds": wall - epochs_s,
            "restores": len(restored), "restored_from": ",".join(map(str, restored)), "path": t.path,
        })  # fmt: skip
    cols = ["trial_id", *space.names, best_key(metric), "best_epoch", f"last_{metric}", "epochs_run",
            "stopped_early", "stop_reason", "epoch_seconds", "wall_seconds", "overhead_seconds", "restores",
            "restored_from", "path"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=cols)
    frame[best_key(metric)] = frame[best_key(metric)].astype(float)
    return frame.sort_values(best_key(metric), ascending=mode == "min", na_position="last", ignore_index=True)


def write_table(frame: pd.DataFrame, run_dir: Path) -> Path:
    """``tune_results.parquet`` and the same rows as CSV (values of mixed type become text)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(type).nunique() > 1:
            out[col] = out[col].astype(str)
    folder = RunFolder(run_dir)
    folder.write_frame(RESULTS_CSV, out)
    return folder.write_frame(RESULTS_FILE, out)


@dataclass(frozen=True)
class Best:
    trial: TrialResult
    row: dict[str, Any]  # the best epoch's metrics
    checkpoint: Path


def best_trial(trials: list[TrialResult], metric: str, mode: str) -> Best:
    """The trial with the best epoch of all, and the kept checkpoint of that epoch (or its best kept one)."""
    ranked = [(t, best_row(t.history, metric, mode)) for t in trials]
    ranked = [(t, r) for t, r in ranked if r is not None and t.checkpoints]
    if not ranked:
        raise AppError("no trial reported a finite metric with a checkpoint",
                       "see the trials' error.txt under <run_dir>/tune/ and run.log")  # fmt: skip
    trial, row = ranked[0]
    for t, r in ranked[1:]:
        if _better(float(r[metric]), float(row[metric]), mode):
            trial, row = t, r
    folder, ckpt_row = next(((p, m) for p, m in trial.checkpoints if m.get("epoch") == row["epoch"]),
                            max(trial.checkpoints, key=lambda pm: float(pm[1].get("score") or -np.inf)))  # fmt: skip
    return Best(trial, ckpt_row, Path(folder))
