"""The console a person reads: the run folder, a line per stage and per epoch, warnings, the result.

Everything else a run prints (the stages' INFO lines, Ray's per-dataset plans and progress, Ray
Train's per-report notices, the output of Ray's worker processes) goes to ``run.log`` only; Ray
keeps its own logs as well. ``debug=true`` leaves the console as Hydra and Ray make it.

How lines reach the console: ``say()`` in this process; a Ray process (the Ray Train controller
reporting an epoch) prints a line starting with :data:`WORKER_MARK`, which the driver shows without
Ray's ``(pid=...)`` prefix. A worker line that is a warning or an error is shown with its prefix.
"""
from __future__ import annotations

import logging
import re
import sys

CONSOLE = "app.console"  # the logger whose INFO records are console lines
WORKERS = "app.workers"  # Ray worker output, re-logged in the driver (run.log; warnings also on the console)
WORKER_MARK = "[app] "  # a Ray process's line meant for the console
_ROUTER = "app_worker_output"  # our handler's name in Ray's worker-output dispatcher
_WORKER_HANDLER = "_app_worker_handler"
WORKER_SETUP_HOOK = "app.console.setup_worker_logging"  # Ray runs it in every worker process
_state = {"debug": True}  # until install(): behave as before
RUN_LOG_ONLY = {"run_log_only": True}  # ``extra=`` of a record the console shows otherwise (an error's one line)

#: A worker line at WARNING or above: Python logging's level name, glog's W/E/F, a warnings.warn line.
_WARNING = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|^\[[\d\- :,]+ [WEF] \d+ \d+\]|\b\w+Warning: ")
#: Ray's own notices that ask nothing of the user; they stay in run.log.
_RAY_NOTICES = (
    "has constructor arguments in the object store",  # every restartable actor (ray-project/ray#53727)
    "Progress bars disabled",  # we turn them off ourselves
)


def say(message: str, *args: object) -> None:
    """One console line (also in run.log)."""
    logging.getLogger(CONSOLE).info(message, *args)


class ConsoleFilter(logging.Filter):
    """Console lines and warnings pass; the INFO chatter of every other logger stays in run.log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "run_log_only", False) or any(n in record.getMessage() for n in _RAY_NOTICES):
            return False
        return record.levelno >= logging.WARNING or record.name == CONSOLE


class ConsoleFormatter(logging.Formatter):
    """The message alone; warnings and errors name their level."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def _is_console(h: logging.Handler) -> bool:
    return isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)


def console_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if _is_console(h)]


def routing() -> bool:
    """Whether :func:`install` took the console over (not with ``debug=true``, not in a bare library call)."""
    return not _state["debug"]


def install(debug: bool) -> None:
    """Make the root logger's console handlers (Hydra's) show console lines and warnings only."""
    _state["debug"] = bool(debug)
    say_to = logging.getLogger(CONSOLE)
    say_to.disabled = False  # a logging dictConfig since import (disable_existing_loggers) must not mute it
    say_to.setLevel(logging.INFO)
    if debug:
        return
    for h in console_handlers():
        if not any(isinstance(f, ConsoleFilter) for f in h.filters):
            h.addFilter(ConsoleFilter())
        h.setFormatter(ConsoleFormatter())


class _ToRunLog(logging.Handler):
    """Hands records of Ray's own loggers (which do not propagate) to the root's file handlers."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        for h in logging.getLogger().handlers:
            if isinstance(h, logging.FileHandler) and record.levelno >= h.level:
                h.handle(record)


def quiet_ray() -> None:
    """Before ``ray.init``: Ray's INFO lines to run.log only, Ray Data's progress bars off."""
    if not routing():
        return
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    for name in ("ray", "ray.data"):
        logger = logging.getLogger(name)
        for h in logger.handlers:
            if _is_console(h):
                h.setLevel(logging.WARNING)
                if not any(isinstance(f, ConsoleFilter) for f in h.filters):
                    h.addFilter(ConsoleFilter())
        if not any(isinstance(h, _ToRunLog) for h in logger.handlers):
            logger.addHandler(_ToRunLog())


def route_worker_output() -> bool:
    """After ``ray.init``: Ray's printer of worker output replaced by :func:`route_batch`."""
    if not routing():
        return False
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:  # a Ray without it: its own printing stays
        return False
    dispatcher.remove_handler("ray_print_logs")
    dispatcher.remove_handler(_ROUTER)
    dispatcher.add_handler(_ROUTER, route_batch)
    return True


def _prefix(batch: dict) -> str:
    name = batch.get("actor_name") or batch.get("task_name") or ""
    return f"({name + ' ' if name else ''}pid={batch.get('pid')}) "


def _lines(batch: dict) -> list[str]:
    if batch.get("pid") != "autoscaler":
        return list(batch.get("lines") or [])
    from ray._private.worker import filter_autoscaler_events  # Ray's own selection of its events

    return [f"autoscaler: {e}" for e in filter_autoscaler_events(batch.get("lines") or [])]


def route_batch(batch: dict) -> None:
    """Ray's batch of one worker's output lines: marked lines to the console, the rest to run.log."""
    prefix = _prefix(batch)
    workers = logging.getLogger(WORKERS)
    for line in _lines(batch):
        if "__ray_tqdm_magic_token__" in line or not line.strip():
            continue  # a progress bar's state
        if line.startswith(WORKER_MARK):
            echo(line[len(WORKER_MARK):])
            continue
        warning = _WARNING.search(line) and not ("DeprecationWarning" in line and "/ray/" in line)
        workers.log(logging.WARNING if warning else logging.INFO, "%s%s", prefix, line)


def echo(text: str) -> None:
    """A console line that is already in run.log (a Ray process wrote it there itself)."""
    record = logging.LogRecord(CONSOLE, logging.INFO, __file__, 0, text, None, None)
    for h in console_handlers():
        h.handle(record)


def worker_line(text: str) -> None:
    """From a Ray process: a line for the driver's console (plain print where nothing routes it)."""
    print(WORKER_MARK + text, flush=True)


def setup_worker_logging() -> None:
    """Ray worker start-up hook: the app's records go to stderr with their level, which the driver
    reads to route them (warnings to the console, the rest to run.log)."""
    from app.kis import redact

    logger = logging.getLogger("app")
    if any(getattr(h, _WORKER_HANDLER, False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    setattr(handler, _WORKER_HANDLER, True)
    redact.install(handler)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
