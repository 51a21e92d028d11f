"""ASHA whose rungs survive a resumed sweep.

Tune saves the trials, the searcher and the callbacks with a sweep's state, but not the
scheduler: a restored sweep's ASHA starts with empty rungs, so the trials after the restart would
be judged only against each other (a trial worse than every one before the kill would run on).
Each trial Tune adds on restore brings its recorded results (the driver's ``result.json`` in the
trial folder, on the storage URI when the sweep is there); they are replayed into the trial's
bracket, so the rungs hold what they held.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

from ray.tune.schedulers import ASHAScheduler


def _remote_text(trial: Any) -> str | None:
    """The trial's ``result.json`` when its sweep is on a storage URI (pyarrow's S3 or GCS filesystem)."""
    import pyarrow.fs as pafs

    from app.tune.place import RESULT_FILE, read_text

    fs = getattr(getattr(trial, "storage", None), "storage_filesystem", None)
    if fs is None or isinstance(fs, pafs.LocalFileSystem):
        return None
    return read_text(fs, f"{trial.path}/{RESULT_FILE}") or ""


def recorded_results(trial_dir: Path, text: str | None = None) -> Iterator[dict[str, Any]]:
    """The results the driver wrote for a trial, oldest first (none for a new trial); ``text``: the
    file's content read from a storage URI."""
    from app.tune.place import RESULT_FILE, parse_results

    path = trial_dir / RESULT_FILE
    if text is None and not path.is_file():
        return
    yield from parse_results(path.read_text() if text is None else text)


class ResumableASHA(ASHAScheduler):
    """``ASHAScheduler`` that rebuilds its rungs from a restored trial's recorded results."""

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        super().on_trial_add(tune_controller, trial)
        try:
            folder = Path(trial.path)
        except RuntimeError:  # a new trial: Tune names its folder when it starts
            return
        self.replay(trial, recorded_results(folder, _remote_text(trial)))

    def replay(self, trial: Any, results: Iterator[dict[str, Any]]) -> None:
        """Record ``results`` at the trial's rungs as if they had just arrived (no decision is taken)."""
        bracket = self._trial_info[trial.trial_id]
        for row in results:
            t, value = row.get(self._time_attr), row.get(self._metric)
            if isinstance(t, (int, float)) and isinstance(value, (int, float)) and not math.isnan(value):
                bracket.on_result(trial, t, self._metric_op * value)

    def rungs(self) -> list[dict[float, dict[str, float]]]:
        """Per bracket: milestone -> {trial id: recorded value (oriented so higher is better)}."""
        return [{milestone: dict(recorded) for milestone, recorded in b._rungs} for b in self._brackets]
