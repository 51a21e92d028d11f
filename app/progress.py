"""A single live progress line: rewritten in place on a terminal, logged every few seconds otherwise."""
from __future__ import annotations

import logging
import sys
import time
from typing import Callable

log = logging.getLogger(__name__)


class ProgressLine:
    def __init__(self, render: Callable[[], str], every_s: float = 0.5, log_every_s: float = 5.0) -> None:
        self.render = render
        self.tty = sys.stderr.isatty()
        self.every = every_s if self.tty else log_every_s
        self.last = 0.0

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        text = self.render()
        if self.tty:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()
        else:
            log.info("%s", text)

    def close(self) -> None:
        """Erase the live line on a terminal: the stage's own line takes its place (in run.log the
        last state is logged once more)."""
        log.info("%s", self.render())
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
