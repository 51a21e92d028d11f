"""Per-stage wall time and throughput, merged from what the pipeline measured and the run's files.

``stage_timings`` (from the pipeline, or ``stage_timings.json``) maps a stage to either its wall
seconds or a dict such as ``{"wall_s": 12.0, "bars": 50000, "requests": 600, "rate_limit": 20}``
(``rows`` for features, ``samples`` for training and inference). The collection figures also come
from ``data_manifest.json`` and the training figures from ``metrics.json`` when not given.
"""
from __future__ import annotations

import resource
import sys
from collections.abc import Mapping
from typing import Any

from app.stage_registry import RAY_START, stage_names

UNITS = ("bars", "rows", "samples", "windows", "trials", "symbols")
#: Per-stage memory (app.machine.memory, the training workers' CUDA peak), carried into the report.
MEMORY_KEYS = ("peak_rss_mb", "driver_peak_rss_mb", "gpu_peak_mb")


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out else None


def _entry(stage: str, raw: Any) -> dict:
    if not isinstance(raw, Mapping):
        return {"stage": stage, "wall_s": _num(raw)}
    entry: dict[str, Any] = {"stage": stage, "wall_s": _num(raw.get("wall_s", raw.get("seconds")))}
    unit = next((u for u in UNITS if u in raw), raw.get("unit"))
    if unit:
        entry.update(unit=unit, items=_num(raw.get(unit, raw.get("items"))))
        entry["per_s"] = _num(raw.get(f"{unit}_per_s", raw.get("per_s")))
    for key in ("requests", "requests_per_s", "rate_limit", *MEMORY_KEYS):
        if raw.get(key) is not None:
            entry[key] = _num(raw[key])
    return entry


def _from_manifest(totals: Mapping[str, Any] | None) -> dict:
    if not totals:
        return {}
    return {"wall_s": totals.get("seconds"), "bars": totals.get("bars_fetched"), "bars_per_s": totals.get("bars_per_s"),
            "requests": totals.get("requests"), "requests_per_s": totals.get("requests_per_s"),
            "rate_limit": totals.get("rate_limit")}


def _from_training(metrics: Mapping[str, Any] | None) -> dict:
    if not metrics:
        return {}
    history = metrics.get("history") or []
    samples = sum(int(r.get("train_samples") or 0) for r in history)
    seconds = sum(float(r.get("train_seconds") or 0.0) for r in history)
    wall = (metrics.get("timings") or {}).get("total_s")
    return {"wall_s": wall, "samples": samples or None, "samples_per_s": samples / seconds if seconds > 0 else None}


def stage_table(stage_timings: Mapping[str, Any] | None, manifest: Mapping[str, Any] | None,
                metrics: Mapping[str, Any] | None) -> list[dict]:
    """One entry per stage: wall_s, items, unit, per_s (+ requests, requests_per_s, rate_limit)."""
    merged: dict[str, dict] = {}
    derived = {"collect": _from_manifest((manifest or {}).get("totals")), "train": _from_training(metrics)}
    for stage, raw in derived.items():
        if raw:
            merged[stage] = {k: v for k, v in raw.items() if v is not None}
    for stage, raw in (stage_timings or {}).items():  # measured figures replace derived ones as a whole
        given = dict(raw) if isinstance(raw, Mapping) else {"wall_s": raw}
        derived_limit = merged.get(stage, {}).get("rate_limit")
        merged[stage] = {k: v for k, v in given.items() if v is not None}
        if derived_limit is not None:
            merged[stage].setdefault("rate_limit", derived_limit)
    entries = []
    order = (RAY_START, *stage_names())  # Ray's start-up first: it precedes the first Ray stage
    for stage in sorted(merged, key=lambda s: (order.index(s) if s in order else 99, s)):
        entry = _entry(stage, merged[stage])
        if entry.get("per_s") is None and entry.get("items") and entry.get("wall_s"):
            entry["per_s"] = entry["items"] / entry["wall_s"]
        if entry.get("requests_per_s") is None and entry.get("requests") and entry.get("wall_s"):
            entry["requests_per_s"] = entry["requests"] / entry["wall_s"]
        entries.append(entry)
    return entries


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its waited-for children (Ray workers are not among them)."""
    scale = 1.0 / 1024 if sys.platform != "darwin" else 1.0 / 1024**2  # Linux reports KiB, macOS bytes
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) * scale, 1)


def gpu_memory() -> dict | None:
    """Peak CUDA memory of this process when torch is already loaded and a GPU was used; else None."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    dev = torch.cuda.current_device()
    return {"device": torch.cuda.get_device_name(dev),
            "peak_allocated_mb": round(torch.cuda.max_memory_allocated(dev) / 1024**2, 1),
            "peak_reserved_mb": round(torch.cuda.max_memory_reserved(dev) / 1024**2, 1)}


def from_stages(stages: list[dict]) -> dict:
    """The run's peaks from the stage table: process-tree RSS and the training workers' GPU memory."""
    rss = [s["peak_rss_mb"] for s in stages if s.get("peak_rss_mb") is not None]
    gpu = [s["gpu_peak_mb"] for s in stages if s.get("gpu_peak_mb") is not None]
    out: dict[str, Any] = {}
    if rss:
        out.update(peak_rss_mb=max(rss), scope="process tree (driver, local Ray and its workers), peak over stages")
    if gpu:
        out["gpu"] = {"peak_allocated_mb": max(gpu), "scope": "training workers, peak over stages"}
    return out


def resources(given: Mapping[str, Any] | None, stages: list[dict] | None = None) -> dict:
    """Peak RSS and GPU memory: what the pipeline measured (per stage, on its workers), else this process."""
    given = {**from_stages(stages or []), **dict(given or {})}
    out = {"peak_rss_mb": _num(given.get("peak_rss_mb")) or peak_rss_mb(),
           "scope": given.get("scope", "report process (driver) and its waited-for children"),
           "gpu": given.get("gpu") if "gpu" in given else gpu_memory()}
    out.update({k: v for k, v in given.items() if k not in out})
    return out
