"""The run folder ``experiments/<experiment>/<timestamp>/``: its file names, defined once, and its writer.

Every stage writes its files through :class:`RunFolder`: each file is replaced whole (a reader
never sees half of it) by the one stage that owns it. The two ledgers that several stages add to
(``stage_timings.json``, ``environment.json``) are merged here, so no stage reads a file back
to rewrite it.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# --- what the stages write -------------------------------------------------------------------
CONFIG = Path(".hydra") / "config.yaml"  # Hydra's, secrets redacted
OVERRIDES = Path(".hydra") / "overrides.yaml"
RUN_LOG = "run.log"
ENVIRONMENT = "environment.json"  # the environment check (app/machine), refreshed once Ray runs
STAGE_TIMINGS = "stage_timings.json"  # per stage: wall seconds and throughput
DATA_MANIFEST = "data_manifest.json"  # collect
REJECTED_ROWS = "rejected_rows.csv"  # data=file rows that broke the bars contract
SCALER = "scaler.json"  # windows: the scaler fitted on the training split
SPLIT = "split.json"  # windows: the split's dates
CHECKPOINTS = "checkpoints"
BEST_CHECKPOINT = Path(CHECKPOINTS) / "best"
MODEL_BUNDLE = "model"  # what stage=predict loads
PREDICTIONS = "predictions.parquet"  # train / tune: val and test rows, the model and the reference columns
METRICS = "metrics.json"  # train / tune: history, best epoch, baselines, test metrics
TUNE_SUMMARY = "tune_summary.json"
BEST_OVERRIDES = "best_overrides.txt"  # tune: the best trial as overrides of a training run
TUNE_RESULTS = "tune_results.parquet"
TUNE_RESULTS_CSV = "tune_results.csv"
EVALUATION = "evaluation.json"
EVALUATION_IC = "evaluation_ic.parquet"
EVALUATION_BACKTEST = "evaluation_backtest.parquet"
EVALUATION_TRADES = "evaluation_trades.parquet"
REPORT = "performance_report.json"
SUMMARY_MD = "summary.md"
COMPARISON_CSV = "comparison.csv"
COMPARISON_MD = "comparison.md"
COMPARISON_PNG = "comparison.png"
SIGNALS = "signals.parquet"
SIGNALS_CSV = "signals.csv"
PORTFOLIO_CSV = "portfolio.csv"
PREDICT_SUMMARY = "predict_summary.json"


class RunFolder:
    """One run's folder; every path handed out or written is inside it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, name: str | Path) -> Path:
        return self.root / name

    def exists(self, name: str | Path) -> bool:
        return self.path(name).exists()

    def _replace(self, name: str | Path, write: Callable[[Path], None]) -> Path:
        """Write to a temporary file beside the target, then rename it over the target."""
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            write(Path(tmp))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def write_text(self, name: str | Path, text: str) -> Path:
        return self._replace(name, lambda tmp: tmp.write_text(text))

    def write_json(self, name: str | Path, data: Any, *, allow_nan: bool = True) -> Path:
        """Values JSON has no type for are written as text; ``allow_nan=False`` refuses NaN (for data
        that must be JSON-ready already)."""
        return self.write_text(name, json.dumps(data, indent=1, default=str, allow_nan=allow_nan))

    def write_frame(self, name: str | Path, frame: Any) -> Path:
        """A pandas frame as Parquet or CSV, by the name's suffix."""
        if str(name).endswith(".csv"):
            return self._replace(name, lambda tmp: frame.to_csv(tmp, index=False))
        return self._replace(name, lambda tmp: frame.to_parquet(tmp, index=False))

    def read_json(self, name: str | Path, default: Any = None) -> Any:
        path = self.path(name)
        return json.loads(path.read_text()) if path.exists() else default

    def merge_json(self, name: str | Path, update: Mapping[str, Any]) -> Path:
        """Add ``update``'s keys to a ledger file (stage timings, environment), replacing it whole."""
        return self.write_json(name, {**(self.read_json(name) or {}), **update})
