"""The error hierarchy the CLI turns into one clear line.

Every error a user can cause (bad config, bad input, unreachable services, API faults that
outlived their retries) derives from :class:`AppError`, whose ``str`` is a single line that
names the problem and, where there is one, the fix.
"""
from __future__ import annotations


class AppError(Exception):
    """Base of every user-facing error; ``hint`` says how to fix it."""

    #: the process exit code when this error ends a run (see the CLI's exit codes)
    exit_code = 1
    #: True for a failure that may pass by itself (a server that kept failing); False when the
    #: input must change (an unknown symbol, a bad file)
    transient = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = " ".join(self.message.split())
        if self.hint:
            text += f" (fix: {' '.join(self.hint.split())})"
        return text


class ConfigError(AppError):
    """A config key, value or combination that cannot work."""


class DataError(AppError):
    """Input data that breaks a contract (bad rows, empty ranges, unknown symbols)."""


class ServiceError(AppError):
    """A service the run needs (Redis, the KIS server) cannot be reached."""

    transient = True


class IncompleteDataError(AppError):
    """Collection left symbols missing for a transient reason: a re-run may fetch them."""

    exit_code = 3
