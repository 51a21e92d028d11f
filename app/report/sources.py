"""What a run folder already holds, read defensively: config, data manifest, training metrics.

The saved config never holds secrets (they come from the environment), but the report strips
any key that looks like one anyway, and any password inside a URL, before hashing or writing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app import run_folder
from app.evaluate.jsonable import json_ready

log = logging.getLogger(__name__)

SECRET_KEY = re.compile(r"secret|token|password|passwd|app_?key|api_?key|credential", re.IGNORECASE)
CONFIG_FILE = run_folder.CONFIG
MANIFEST_FILE = run_folder.DATA_MANIFEST
METRICS_FILE = run_folder.METRICS
TIMINGS_FILE = run_folder.STAGE_TIMINGS
SWEEP_FILE = run_folder.TUNE_SUMMARY  # written by the tune stage (app/tune/stage.py)
ENV_FILE = run_folder.ENVIRONMENT  # written by the environment check (app/machine/environment.py)


def _strip_url_password(text: str) -> str:
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if parts.password is None:
        return text
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redact(value: Any, path: str = "", removed: list[str] | None = None) -> tuple[Any, list[str]]:
    """A copy without secret-looking keys (their dotted paths are listed) or URL passwords."""
    removed = [] if removed is None else removed
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if SECRET_KEY.search(str(key)):
                removed.append(where)
                continue
            out[str(key)] = redact(item, where, removed)[0]
        return out, removed
    if isinstance(value, (list, tuple)):
        return [redact(v, f"{path}[]", removed)[0] for v in value], removed
    if isinstance(value, str):
        return _strip_url_password(value), removed
    return value, removed


def config_digest(resolved: Mapping[str, Any] | None) -> str | None:
    """SHA-256 of the canonical JSON of the (redacted) resolved config: same config, same digest."""
    if resolved is None:
        return None
    text = json.dumps(json_ready(resolved), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_config(run_dir: Path) -> dict | None:
    """The resolved config Hydra saved in the run folder, if any."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return None
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]
    except Exception as exc:  # an interpolation that no longer resolves outside the run
        log.warning("config %s did not resolve (%s); using it unresolved", path, exc)
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # type: ignore[return-value]


def lookup(config: Mapping[str, Any] | None, dotted: str, default: Any = None) -> Any:
    """``a.b`` of a saved (plain) config, or ``default`` when any level is missing."""
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or node.get(key) is None:
            return default
        node = node[key]
    return node


def read_json(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        log.warning("ignoring %s: not valid JSON (%s)", path, exc)
        return None


def manifest_summary(manifest: Mapping[str, Any] | None) -> dict | None:
    """Source, range and totals of the collected data; per-symbol detail stays in data_manifest.json."""
    if not manifest:
        return None
    symbols = manifest.get("symbols") or {}
    stored = [(e.get("stored") or e) for e in symbols.values() if isinstance(e, Mapping)]
    firsts = [s["first_ts"] for s in stored if s.get("first_ts")]
    lasts = [s["last_ts"] for s in stored if s.get("last_ts")]
    return {
        "source": manifest.get("source"), "freq": manifest.get("freq"),
        "requested": {"start": manifest.get("start"), "end": manifest.get("end")},
        "stored": {"first_ts": min(firsts) if firsts else None, "last_ts": max(lasts) if lasts else None,
                   "rows": sum(int(s.get("rows", 0)) for s in stored)},
        "n_symbols": len(symbols), "n_failed": len(manifest.get("failed") or {}),
        "adjusted": manifest.get("adjusted"), "totals": manifest.get("totals"),
    }


def data_source(manifest: Mapping[str, Any] | None) -> dict | None:
    """What market the run's bars are of (the simulator and its settings, KIS, or a file)."""
    described = (manifest or {}).get("data_source")
    if isinstance(described, Mapping) and described.get("label"):
        return dict(described)
    source = str((manifest or {}).get("source") or "")
    if source.startswith("file:"):  # a manifest from before sources were described
        return {"kind": "file", "label": f"file {source[5:]}", "name": source[5:]}
    if source in ("sim", "kis"):
        label = "simulated KIS market; not real data" if source == "sim" else "KIS Open API"
        return {"kind": source, "label": label}
    return None


def training_summary(metrics: Mapping[str, Any] | None) -> dict | None:
    """Best epoch and timings from the training stage's metrics.json (the history is plotted)."""
    if not metrics:
        return None
    history = metrics.get("history") or []
    return {
        "model": (metrics.get("model") or {}).get("_target_") if isinstance(metrics.get("model"), Mapping) else None,
        "n_parameters": metrics.get("n_parameters"), "monitor": metrics.get("monitor"),
        "best_epoch": metrics.get("best_epoch"), "epochs_run": len(history),
        "best": metrics.get("best"), "validation_baselines": metrics.get("baselines"),
        "timings": metrics.get("timings"),
    }


def sweep_summary(summary: Mapping[str, Any] | None) -> dict | None:
    """What the report shows of a sweep (``tune_summary.json``): how it ran and what won."""
    if not summary:
        return None
    keys = ("metric", "mode", "search", "scheduler", "trial_mode", "n_trials", "stopped_early", "trial_epochs",
            "best_trial", "best_value", "best_epoch", "best_values")  # fmt: skip
    out = {k: summary.get(k) for k in keys}
    out["overrides_file"] = Path(str(summary.get("overrides_file") or run_folder.BEST_OVERRIDES)).name
    return out


def sweep_plots(summary: Mapping[str, Any] | None, run_dir: Path) -> dict[str, Path]:
    """The PNGs the tune stage drew (``plots`` of ``tune_summary.json``) still in ``run_dir``."""
    paths = {f"sweep_{k}": run_dir / Path(str(v)).name for k, v in ((summary or {}).get("plots") or {}).items()}
    return {k: p for k, p in paths.items() if p.exists()}
