"""Run plots: the training curves per epoch and each stage's wall time and throughput."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from app.report import style


def _series(history: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None and r.get("epoch") is not None]
    pts = [(e, v) for e, v in pts if np.isfinite(float(v))]
    if not pts:
        return np.array([]), np.array([])
    e, v = zip(*sorted(pts))
    return np.asarray(e, float), np.asarray(v, float)


def plot_training(history: list[dict], path: Path, *, best_epoch: int | None = None, dpi: int = 110) -> Path:
    """Train and validation loss per epoch, and the validation IC / rank IC beside them."""
    if not history:
        return style.empty(path, "Training", "no training history in this run", dpi)
    ics = [k for k in ("val_ic", "val_rank_ic") if _series(history, k)[0].size]
    fig, axes = style.figure(1, 2 if ics else 1, size=(11 if ics else 7, 4.2))
    loss_ax = axes[0] if ics else axes
    for key, col in (("train_loss", "#1f77b4"), ("val_loss", "#ff7f0e")):
        e, v = _series(history, key)
        if e.size:
            loss_ax.plot(e, v, marker="o", ms=3, color=col, label=key.replace("_", " "))
    loss_ax.set_title("Loss per epoch")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    if ics:
        ic_ax = axes[1]
        for key, col in zip(ics, ("#2ca02c", "#d62728")):
            e, v = _series(history, key)
            ic_ax.plot(e, v, marker="o", ms=3, color=col, label={"val_ic": "validation IC", "val_rank_ic": "validation rank IC"}[key])
        ic_ax.axhline(0, color="black", lw=0.8)
        ic_ax.set_title("Validation IC per epoch")
        ic_ax.set_xlabel("epoch")
        ic_ax.set_ylabel("mean per-date correlation")
        ic_ax.legend(loc="best", fontsize=9)
    for ax in (axes if ics else [axes]):
        ax.xaxis.get_major_locator().set_params(integer=True)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="#555555", ls=":", lw=1, label=f"best epoch ({best_epoch})")
    loss_ax.legend(loc="best", fontsize=9)
    return style.save(fig, path, dpi)


def _rate_label(entry: dict) -> str:
    text = f"{entry['per_s']:,.0f} {entry.get('unit') or 'items'}/s" if entry.get("per_s") else ""
    if entry.get("requests_per_s"):
        limit = f" of {entry['rate_limit']:g}" if entry.get("rate_limit") else ""
        text += f" · {entry['requests_per_s']:.1f} req/s{limit}"
    if entry.get("peak_rss_mb"):
        text += (" · " if text else "") + f"{entry['peak_rss_mb']:,.0f} MB RSS"
    if entry.get("gpu_peak_mb"):
        text += f" · {entry['gpu_peak_mb']:,.0f} MB GPU"
    return text


def plot_throughput(stages: list[dict], path: Path, *, dpi: int = 110) -> Path:
    """Wall time per stage (bars) labelled with the stage's throughput."""
    timed = [s for s in stages if s.get("wall_s") is not None]
    if not timed:
        return style.empty(path, "Stage throughput", "no stage timings recorded", dpi)
    names = [s["stage"] for s in timed][::-1]
    walls = [s["wall_s"] for s in timed][::-1]
    fig, ax = style.figure(size=(10, 1.2 + 0.6 * len(timed)))
    bars = ax.barh(names, walls, color="#1f77b4", alpha=0.8)
    top = max(walls) if max(walls) > 0 else 1.0
    for bar, entry in zip(bars, timed[::-1]):
        label = f"{entry['wall_s']:,.1f} s" + (f"  ({_rate_label(entry)})" if _rate_label(entry) else "")
        ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=9)
    ax.set_xlim(0, top * 1.6)
    ax.set_title("Wall time, throughput and peak memory (process tree) per stage")
    ax.set_xlabel("wall time (s)")
    return style.save(fig, path, dpi)
