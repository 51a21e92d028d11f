"""Sweep-wide stopping on a budget of trial-epochs, and a log line and a timing record per trial event."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Iterator

from ray.tune import Callback, Stopper

from app import console, storage
from app.tune.place import result_rows

log = logging.getLogger(__name__)


class EpochBudget(Stopper):
    """Stops the whole sweep once its trials have trained ``max_trial_epochs`` epochs in all.

    Epochs are counted per trial as the highest ``epoch`` reported, so a resumed sweep counts the
    epochs of its earlier run too (read once from the trials' ``result.json`` files; ``experiment_dir``
    may be the experiment's storage URI).
    """

    def __init__(self, max_trial_epochs: int, experiment_dir: str) -> None:
        self.max_trial_epochs = int(max_trial_epochs)
        self.experiment_dir = experiment_dir
        self.epochs: dict[str, int] | None = None
        self.exhausted = False

    def _rows(self) -> Iterator[dict[str, Any]]:
        if storage.is_uri(self.experiment_dir):  # the sweep's experiment on a storage URI
            yield from result_rows(self.experiment_dir)
            return
        for path in Path(self.experiment_dir).glob("*/result.json"):
            for line in path.read_text().splitlines():
                yield json.loads(line) if line.strip() else {}

    def _load(self) -> dict[str, int]:
        epochs: dict[str, int] = {}
        for row in self._rows():
            if "trial_id" in row and "epoch" in row:
                epochs[row["trial_id"]] = max(epochs.get(row["trial_id"], 0), int(row["epoch"]))
        return epochs

    @property
    def spent(self) -> int:
        return sum((self.epochs or {}).values())

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if self.epochs is None:
            self.epochs = self._load()
        if "epoch" in result:
            self.epochs[trial_id] = max(self.epochs.get(trial_id, 0), int(result["epoch"]))
        return False

    def stop_all(self) -> bool:
        if not self.exhausted and self.spent >= self.max_trial_epochs:
            self.exhausted = True
            log.info("epoch budget spent (%d trial-epochs): stopping the sweep", self.spent)
        return self.exhausted


class TrialLogCallback(Callback):
    """One line per trial start, end and failure in the run's log (Tune's table goes to stdout), and
    the same events with wall-clock times in ``times_path`` (JSON lines; a resumed sweep appends)."""

    def __init__(self, metric: str, times_path: str) -> None:
        self.metric = metric
        self.times_path = times_path

    def _record(self, trial: Any, event: str) -> None:
        with open(self.times_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"trial_id": trial.trial_id, "event": event, "t": time.time()}) + "\n")

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, "start")
        log.info("trial %s started: %s", trial.trial_id, trial.config)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, "end")
        last = trial.last_result or {}
        console.say("trial %s ended after %s epoch(s): best %s %s", trial.trial_id, last.get("epoch"),
                    self.metric, last.get(f"best_{self.metric}"))  # fmt: skip

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, "end")
        log.warning("trial %s failed (see %s/error.txt)", trial.trial_id, trial.path)


def wall_seconds(times_path: Path) -> dict[str, float]:
    """Per trial, the wall time between each start and the end that follows it, added up."""
    if not Path(times_path).exists():
        return {}
    out: dict[str, float] = {}
    started: dict[str, float] = {}
    for line in Path(times_path).read_text().splitlines():
        row = json.loads(line)
        if row["event"] == "start":
            started[row["trial_id"]] = row["t"]
        elif row["trial_id"] in started:
            out[row["trial_id"]] = out.get(row["trial_id"], 0.0) + row["t"] - started.pop(row["trial_id"])
    return out
