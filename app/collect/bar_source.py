"""Where bars come from: the ``BarSource`` protocol and the registry of sources by name.

``data.source`` names one of :data:`BAR_SOURCES` (or ``auto``: real KIS when its credentials are in
the environment, else the simulator). Adding a source is one entry below plus its module; the
config check and the collect stage read this registry and nothing else about sources.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

AUTO = "auto"

#: name -> "module:attribute" of a BarSource, imported only when used.
BAR_SOURCES: dict[str, str] = {
    "sim": "app.collect.api_sources:SIM",
    "kis": "app.collect.api_sources:KIS",
    "file": "app.collect.file_bars:FILE",
}


class BarSource(Protocol):
    def check(self, cfg: Any) -> None:
        """Config-time checks of this source's keys (a one-line ConfigError), before any work starts;
        run for every registered source, as ``auto`` may pick any."""

    def collect(self, cfg: Any, run_dir: Path, store_root: str) -> dict:
        """Bars of the configured symbols into the store at ``store_root``; returns the data manifest."""


def source_names() -> tuple[str, ...]:
    """The values ``data.source`` accepts."""
    return (AUTO, *BAR_SOURCES)


def bar_source(name: str) -> BarSource:
    module, attr = BAR_SOURCES[name].split(":")
    return getattr(importlib.import_module(module), attr)
