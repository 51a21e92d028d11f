"""Keep secret values out of logs and messages.

Every secret the package touches (app key, app secret, access tokens, approval keys, Redis
passwords) is registered here; :func:`redact` replaces them in any text, and
:class:`RedactingFilter` does it for log records before any handler sees them.
"""
from __future__ import annotations

import logging
import threading

MASK = "***"
_MIN_LEN = 6  # shorter values would mask ordinary words
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    if value and len(value) >= _MIN_LEN:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        found = [s for s in _secrets if s in text]
    for secret in sorted(found, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and traceback text) with the registered secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """A module logger whose records are redacted where they are made (filters on a logger
    apply only to records created on that very logger, not to its children)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def install(handler: logging.Handler | None = None) -> None:
    """Also redact at a handler (default: every handler of the root logger), for records that
    other libraries make."""
    handlers = [handler] if handler else logging.getLogger().handlers
    for h in handlers:
        if _FILTER not in h.filters:
            h.addFilter(_FILTER)
