"""The only code that speaks KIS Open API (real, paper, or the local simulator).

Public entry points (imported lazily so that ``app.kis.master`` stays light):

- :class:`~app.kis.client.KisClient` with :class:`~app.kis.settings.KisSettings` and
  :class:`~app.kis.credentials.Credentials`;
- :class:`~app.kis.errors.KisError` (an :class:`app.errors.AppError`);
- :class:`~app.kis.ws.KisWebSocket`, the realtime client (ticks, books, gaps);
- :func:`app.kis.redact.install` to mask secrets at log handlers.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "KisClient": "app.kis.client",
    "KisSettings": "app.kis.settings",
    "Credentials": "app.kis.credentials",
    "KisError": "app.kis.errors",
    "KisAuthError": "app.kis.errors",
    "KisWebSocket": "app.kis.ws",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'app.kis' has no attribute {name!r}")
