"""Per-epoch lines in the run's ``run.log`` while training runs, and the driver's log file."""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ray.train import UserCallback

from app import console_text
from app.console import worker_line

log = logging.getLogger(__name__)

LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's file format
SHOWN = ("train_loss", "val_loss", "val_ic", "val_rank_ic", "val_dir_acc", "lr", "train_samples_per_s")


def epoch_line(metrics: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {metrics.get('epoch')}/{epochs}"]
    for key in SHOWN:
        value = metrics.get(key)
        if isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
    if metrics.get("is_best"):
        parts.append("(best)")
    return " ".join(parts)


def short_reason(exc: BaseException, limit: int = 160) -> str:
    """The last non-empty line of an error (Ray puts the cause last), cut to one short line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class EpochLogCallback(UserCallback):
    """Runs in the Ray Train controller: one line per reported epoch in ``run.log`` and on the console."""

    def __init__(self, log_path: Path, epochs: int) -> None:
        self.log_path = str(log_path)
        self.epochs = epochs

    def _write(self, level: str, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"[{stamp}][app.train][{level}] - {message}\n")

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        if metrics:
            self._write("INFO", epoch_line(metrics[0], self.epochs))
            # the short form for the person watching: Ray forwards it to the driver's console
            worker_line(console_text.epoch_line(metrics[0], self.epochs))

    def after_exception(self, run_context: Any, worker_exceptions: dict[int, Exception]) -> None:
        for rank, exc in sorted(worker_exceptions.items()):
            self._write("WARNING", f"worker {rank} failed: {short_reason(exc)}")


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Send ``app.*`` logs to ``path`` unless a handler (Hydra's) already writes there."""
    target = path.resolve()
    loggers = [logging.getLogger(), logging.getLogger("app")]
    present = any(
        isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == target
        for lg in loggers
        for h in lg.handlers
    )
    if present:
        yield
        return
    handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    app_logger = logging.getLogger("app")
    old_level = app_logger.level
    if app_logger.getEffectiveLevel() > logging.INFO:
        app_logger.setLevel(logging.INFO)
    app_logger.addHandler(handler)
    try:
        yield
    finally:
        app_logger.removeHandler(handler)
        app_logger.setLevel(old_level)
        handler.close()
