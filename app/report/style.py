"""Matplotlib set up for headless runs, and the few helpers every plot shares."""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in Ray workers

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

COLORS = {"model": "#1f77b4", "benchmark": "#555555", "zero": "#bcbd22", "ridge": "#ff7f0e", "oracle": "#2ca02c",
          "top_k": "#1f77b4", "long_short": "#d62728", "equal_weight": "#555555"}
FALLBACK = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


#: a line every figure saved within :func:`caption` carries at its top (the data source)
_CAPTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("caption", default=None)


@contextlib.contextmanager
def caption(text: str | None) -> Iterator[None]:
    token = _CAPTION.set(text)
    try:
        yield
    finally:
        _CAPTION.reset(token)


def color(name: str, i: int = 0) -> str:
    return COLORS.get(name, FALLBACK[i % len(FALLBACK)])


def figure(rows: int = 1, cols: int = 1, *, size: tuple[float, float] = (10, 5), **kw) -> tuple[Figure, object]:
    fig, axes = plt.subplots(rows, cols, figsize=size, **kw)
    return fig, axes


def date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def percent_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(PercentFormatter(1.0, decimals=0))


def save(fig: Figure, path: Path, dpi: int) -> Path:
    if _CAPTION.get() and not fig.get_suptitle():
        fig.suptitle(_CAPTION.get(), fontsize=9, color="#555555")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def empty(path: Path, title: str, message: str, dpi: int) -> Path:
    """A readable placeholder when there is nothing to draw (e.g. no training history)."""
    fig, ax = figure(size=(8, 3))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, wrap=True)
    return save(fig, path, dpi)
